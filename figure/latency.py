"""Runs in: offline.

Draws figure/latency.svg (the README's end-to-end latency figure) from the results file
that `python -m evaluation.benchmarks` writes. Run:

    python figure/latency.py [--results PATH] [--output PATH]

One panel per simulated latency model in the file (fixed, tokens). In each, every benchmark
query's time ratio: SecGPT / VanillaGPT, SecGPT strict / VanillaGPT, and the LlamaIndex port /
its own baseline, beside the IsolateGPT paper's 1.30 (its overhead was at most 30% for 75.7% of
queries, with GPT-4).

It only reads the results file and writes the figure: it never runs the benchmark. A panel
whose model has no port row (not installed, skipped) says "port: not measured" in its legend
rather than leaving the port out silently. The same file always gives the same bytes.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RESULTS = ROOT / "evaluation" / "results" / "benchmarks.json"
DEFAULT_OUTPUT = Path(__file__).resolve().with_name("latency.svg")
PRODUCE = "python -m evaluation.benchmarks"
INSTALL = "pip install -r evaluation/agentdojo/requirements.txt"
Kind = Literal["fixed", "tokens"]
PAPER_RATIO = 1.30
PAPER_LABEL = "IsolateGPT paper (GPT-4): ≤ 1.30 for 75.7% of its queries"
# Section of the results file -> the latency model it was measured with, if it does not say.
SECTIONS: tuple[tuple[str, Kind], ...] = (("e2e_latency", "fixed"), ("e2e_tokens", "tokens"))
# (series, legend label, colour, marker, x offset). Okabe-Ito colours; the markers tell the
# series apart in grey print too.
SERIES = (
    ("SecGPT", "SecGPT / VanillaGPT", "#0072B2", "o", -0.22),
    ("SecGPT-strict", "SecGPT strict / VanillaGPT", "#56B4E9", "D", 0.0),
    ("port", "LlamaIndex port / its baseline", "#D55E00", "^", 0.22),
)
SHORT = {"SecGPT": "SecGPT", "SecGPT-strict": "strict", "port": "port"}
LEGEND_TITLE = "Each benchmark query's time against its baseline's, with a simulated LLM latency"


class Timing(BaseModel):
    """One system's run of one query. Other fields (llm_calls, answer, ...) are not drawn and
    are ignored: the benchmark adds fields over time, and this script must still read the file."""
    model_config = ConfigDict(extra="ignore")

    seconds: float = Field(gt=0)


class QueryRow(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    kind: str = Field(min_length=1)
    query: str = Field(min_length=1)
    secgpt: Timing = Field(alias="SecGPT")
    vanilla: Timing = Field(alias="VanillaGPT")
    strict: Timing | None = Field(default=None, alias="SecGPT-strict")   # absent from older files


class Latency(BaseModel):
    model_config = ConfigDict(extra="ignore")

    kind: Kind


class EndToEnd(BaseModel):
    model_config = ConfigDict(extra="ignore")

    queries: list[QueryRow] = Field(min_length=1)
    latency: Latency | None = None      # absent from files written before the tokens model
    latency_model: str | None = None
    latency_ms: float | None = None


class PortRow(BaseModel):
    model_config = ConfigDict(extra="ignore")

    kind: str
    query: str
    ratio: float | None = Field(ge=0)


class PortResult(BaseModel):
    """The port's row for one latency model: measured, or skipped with the reason."""
    model_config = ConfigDict(extra="ignore")

    rows: list[PortRow] | None = None
    skipped: str | None = None

    @model_validator(mode="after")
    def measured_or_skipped(self) -> PortResult:
        if (self.rows is None) == (self.skipped is None):
            raise ValueError("a port result holds either rows or skipped")
        return self


class ResultsFile(BaseModel):
    model_config = ConfigDict(extra="ignore")

    e2e_latency: EndToEnd | None = None
    e2e_tokens: EndToEnd | None = None
    port: dict[Kind, PortResult] = {}

    @model_validator(mode="after")
    def one_section_per_model(self) -> ResultsFile:
        kinds = [kind for _, kind, _ in self.sections()]
        if not kinds:
            raise ValueError("no e2e_latency or e2e_tokens section")
        if twice := [k for k in dict.fromkeys(kinds) if kinds.count(k) > 1]:
            raise ValueError(f"two sections hold the {twice[0]} latency model")
        return self

    def sections(self) -> list[tuple[str, Kind, EndToEnd]]:
        """(name, latency model, section) of each end-to-end section with a latency."""
        found: list[tuple[str, Kind, EndToEnd]] = []
        for name, default_kind in SECTIONS:
            e2e: EndToEnd | None = getattr(self, name)
            if e2e is not None:
                found.append((name, e2e.latency.kind if e2e.latency else default_kind, e2e))
        return found


class ResultsError(Exception):
    """The results file is missing or is not one `python -m evaluation.benchmarks` wrote."""


@dataclass(frozen=True)
class Panel:
    """What one panel draws: the model, its queries and each series' ratio per query (None: not
    measured for that query)."""
    kind: str
    title: str
    queries: list[QueryRow]
    ratios: dict[str, list[float | None]]


def load(path: Path) -> ResultsFile:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ResultsError(f"no results file at {path}; produce it with `{PRODUCE}`") from None
    except OSError as exc:
        raise ResultsError(f"cannot read {path} ({exc.strerror}); produce it again with `{PRODUCE}`") from None
    try:
        return ResultsFile.model_validate(json.loads(text))
    except json.JSONDecodeError as exc:
        raise ResultsError(f"{path} is not JSON (line {exc.lineno}: {exc.msg}); produce it again with "
                           f"`{PRODUCE}`") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "top level"
        msg = first["msg"].removeprefix("Value error, ")
        raise ResultsError(f"{path} is not a benchmark results file ({where}: {msg}); produce it again "
                           f"with `{PRODUCE}`") from None


def panels(data: ResultsFile) -> list[Panel]:
    out: list[Panel] = []
    for _, kind, e2e in data.sections():
        port = data.port.get(kind)
        port_ratios = {r.query: r.ratio for r in port.rows} if port and port.rows is not None else {}
        ratios: dict[str, list[float | None]] = {
            "SecGPT": [q.secgpt.seconds / q.vanilla.seconds for q in e2e.queries],
            "SecGPT-strict": [q.strict.seconds / q.vanilla.seconds if q.strict else None for q in e2e.queries],
            "port": [port_ratios.get(q.query) for q in e2e.queries],
        }
        title = e2e.latency_model or (f"fixed {e2e.latency_ms:.0f} ms per call" if kind == "fixed" and e2e.latency_ms
                                      else f"{kind} latency")
        out.append(Panel(kind=kind, title=title, queries=e2e.queries, ratios=ratios))
    return out


def kind_groups(queries: list[QueryRow]) -> list[tuple[str, int, int]]:
    """Runs of consecutive queries of one kind: (kind, first index, last index)."""
    groups: list[tuple[str, int, int]] = []
    for i, q in enumerate(queries):
        if groups and groups[-1][0] == q.kind:
            groups[-1] = (q.kind, groups[-1][1], i)
        else:
            groups.append((q.kind, i, i))
    return groups


def within(values: list[float | None], bound: float) -> str:
    measured = [v for v in values if v is not None]
    return f"{sum(v <= bound for v in measured)} of {len(measured)}"


def draw(shown: list[Panel], output: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    matplotlib.rcParams.update({
        "svg.hashsalt": "secgpt-latency",   # fixed ids for clip paths: same input, same bytes
        "svg.fonttype": "none",             # real <text>, so the numbers are text a reader can search
        "font.family": "sans-serif",
        "font.size": 9,
    })
    # 7.9 in = 570 pt: about 760 px wide at a browser's 96 px per inch, so text is read at its size.
    fig = Figure(figsize=(7.9, 0.9 + 2.9 * len(shown)), layout="constrained")
    axes = fig.subplots(len(shown), 1, squeeze=False).flatten()
    drawn: set[str] = set()
    for ax, panel in zip(axes, shown, strict=True):
        n = len(panel.queries)
        values = [v for series in panel.ratios.values() for v in series if v is not None]
        ax.axhline(1.0, color="#999999", linewidth=0.7, linestyle=":")
        ax.axhline(PAPER_RATIO, color="#009E73", linewidth=1.2, linestyle="--")
        counts = []
        for key, _, colour, marker, offset in SERIES:
            points = [(i + offset, v) for i, v in enumerate(panel.ratios[key]) if v is not None]
            if not points:
                if key == "port":   # said, not silently left out
                    counts.append("port: not measured")
                continue
            drawn.add(key)
            ax.scatter([x for x, _ in points], [y for _, y in points], color=colour, marker=marker, s=22,
                       zorder=3, linewidths=0)
            counts.append(f"{SHORT[key]} {within(panel.ratios[key], PAPER_RATIO)}")
        # The counts sit in a band above the highest point, so they never cover one.
        ax.text(0.995, 0.97, f"queries ≤ {PAPER_RATIO:.2f}: " + ", ".join(counts), transform=ax.transAxes,
                ha="right", va="top", fontsize=8, color="#333333")
        groups = kind_groups(panel.queries)
        for _, first, _ in groups[1:]:
            ax.axvline(first - 0.5, color="#dddddd", linewidth=0.8)
        ax.set_xticks([(first + last) / 2 for _, first, last in groups], [k for k, _, _ in groups])
        ax.set_xticks(range(n), minor=True)
        ax.tick_params(axis="x", length=0, labelsize=8.5)
        ax.tick_params(axis="x", which="minor", length=2.5)
        ax.set_xlim(-0.6, n - 0.4)
        ax.set_ylim(0, max([PAPER_RATIO, *values]) * 1.22)
        ax.set_ylabel("time / baseline's time")
        ax.set_title(panel.title, fontsize=9.5, fontweight="bold", loc="left")
        ax.grid(axis="y", color="#eeeeee", linewidth=0.6)
        ax.set_axisbelow(True)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)

    handles = [Line2D([], [], color=colour, marker=marker, linestyle="none", label=label)
               for key, label, colour, marker, _ in SERIES if key in drawn]
    if "port" not in drawn:
        handles.append(Line2D([], [], color="#999999", marker="^", markerfacecolor="none", linestyle="none",
                              label="port: not measured"))
    handles.append(Line2D([], [], color="#009E73", linestyle="--", linewidth=1.2, label=PAPER_LABEL))
    # The title is the legend's own: constrained layout makes room for one "outside" legend with
    # its title, but places a suptitle on top of it.
    fig.legend(handles=handles, loc="outside upper center", ncol=2, fontsize=8, frameon=False, handlelength=1.8,
               columnspacing=1.5, title=LEGEND_TITLE, alignment="center", title_fontproperties={"size": 10})
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, format="svg", metadata={"Date": None})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python figure/latency.py", description=__doc__.split("\n\n")[1])
    parser.add_argument("--results", metavar="PATH", type=Path, default=DEFAULT_RESULTS,
                        help="the results file (default: evaluation/results/benchmarks.json)")
    parser.add_argument("--output", metavar="PATH", type=Path, default=DEFAULT_OUTPUT,
                        help="the SVG to write (default: figure/latency.svg)")
    args = parser.parse_args(argv)
    try:
        import matplotlib  # noqa: F401 - only to say what to install before anything else
    except ImportError:
        print(f"{parser.prog}: matplotlib is not installed; {INSTALL}", file=sys.stderr)
        return 2
    try:
        shown = panels(load(args.results))
        draw(shown, args.output)
    except ResultsError as exc:
        print(f"{parser.prog}: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"{parser.prog}: could not write {args.output} ({exc.strerror})", file=sys.stderr)
        return 2
    print(args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
