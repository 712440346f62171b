"""Runs in: offline.

Draws figure/agentdojo.svg (the README's AgentDojo results) from the results file
that `python -m evaluation.agentdojo` writes. Run:

    python figure/agentdojo.py [--results PATH] [--output PATH]

One panel per suite; in each, VanillaGPT and SecGPT side by side with attack success
(cross-app and same-app apart), utility and utility under attack, in percent.

It only reads the results file and writes the figure: it never runs the benchmark, and
it never draws a rate the file does not hold (a null rate is "n/a", not 0). Errored
cases are excluded from the rates by the runner, so their number is shown next to them.
The same file always gives the same bytes, so a regenerated figure only shows in a diff
when the results changed.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RESULTS = ROOT / "evaluation" / "results" / "agentdojo.json"
DEFAULT_OUTPUT = Path(__file__).resolve().with_name("agentdojo.svg")
PRODUCE = "python -m evaluation.agentdojo --suite all"
INSTALL = "pip install -r evaluation/agentdojo/requirements.txt"

SUITE_ORDER = ("workspace", "slack", "banking", "travel")   # any other suite follows, in file order
SYSTEMS = ("VanillaGPT", "SecGPT", "SecGPT-strict")  # SecGPT-strict: --isolation strict
# (field, legend label, colour, hatch). Okabe-Ito colours, safe for every common colour-vision
# deficiency; hatches tell the two attack rates and the two utilities apart in grey print too.
METRICS = (
    ("asr_cross_app", "attack success, cross-app", "#D55E00", ""),
    ("asr_same_app", "attack success, same-app", "#E69F00", "///"),
    ("utility", "utility", "#0072B2", ""),
    ("utility_under_attack", "utility under attack", "#56B4E9", "///"),
)

Rate = float | None


class SuiteRow(BaseModel):
    """One suite and system of the results file. Fields this figure does not draw (cases,
    apps, ...) are ignored rather than forbidden: the runner adds fields over time, and an
    older figure script must still read a newer file."""
    model_config = ConfigDict(extra="ignore")

    suite: str = Field(min_length=1)
    system: Literal["VanillaGPT", "SecGPT", "SecGPT-strict"]
    llm: str
    consent: str
    attack: str | None = None
    utility: Rate = Field(ge=0, le=1)            # null too: when every benign case errored
    utility_under_attack: Rate = Field(ge=0, le=1)
    asr_cross_app: Rate = Field(ge=0, le=1)
    asr_same_app: Rate = Field(ge=0, le=1)
    n_user_tasks: int = Field(ge=0)
    n_security_cases: int = Field(ge=0)
    n_errors: int = Field(default=0, ge=0)   # absent from files written before errors were counted


class ResultsFile(BaseModel):
    model_config = ConfigDict(extra="ignore")

    benchmark_version: str
    results: list[SuiteRow] = Field(min_length=1)


class ResultsError(Exception):
    """The results file is missing or is not one `python -m evaluation.agentdojo` wrote."""


def load(path: Path) -> ResultsFile:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ResultsError(f"no results file at {path}; produce it with `{PRODUCE}`") from None
    except OSError as exc:
        raise ResultsError(f"cannot read {path} ({exc.strerror}); produce it again with `{PRODUCE}`") from None
    try:
        data = ResultsFile.model_validate(json.loads(text))
    except json.JSONDecodeError as exc:
        raise ResultsError(f"{path} is not JSON (line {exc.lineno}: {exc.msg}); produce it again with "
                           f"`{PRODUCE}`") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "top level"
        raise ResultsError(f"{path} is not an AgentDojo results file ({where}: {first['msg']}); produce it "
                           f"again with `{PRODUCE}`") from None
    seen = set()
    for row in data.results:
        if (row.suite, row.system) in seen:
            raise ResultsError(f"{path} holds {row.suite}/{row.system} twice; produce it again with "
                               f"`{PRODUCE}`")
        seen.add((row.suite, row.system))
    return data


def suites_in_order(rows: list[SuiteRow]) -> list[str]:
    present = list(dict.fromkeys(r.suite for r in rows))
    return [s for s in SUITE_ORDER if s in present] + [s for s in present if s not in SUITE_ORDER]


def pct(rate: float) -> str:
    return f"{100 * rate:.0f}%"   # as the runner's own table rounds


def title(data: ResultsFile) -> str:
    llms = ", ".join(dict.fromkeys(r.llm for r in data.results))
    consents = ", ".join(dict.fromkeys(r.consent for r in data.results if r.system != "VanillaGPT"))
    attacks = ", ".join(dict.fromkeys(r.attack for r in data.results if r.attack))
    head = f"AgentDojo {data.benchmark_version}" + (f", {attacks} attack" if attacks else "")
    tail = f"LLM: {llms}" + (f"  ·  SecGPT consent: {consents}" if consents else "")
    return f"{head}\n{tail}"


def draw(data: ResultsFile, output: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    matplotlib.rcParams.update({
        "svg.hashsalt": "secgpt-agentdojo",   # fixed ids for clip paths and hatches: same input, same bytes
        "svg.fonttype": "none",               # real <text>, so the numbers are text a reader can search
        "font.family": "sans-serif",
        "font.size": 9,
        "hatch.linewidth": 0.6,
    })
    suites = suites_in_order(data.results)
    cols = min(2, len(suites))
    rows = math.ceil(len(suites) / cols)
    # 7.9 in = 570 pt: about 760 px wide at a browser's 96 px per inch, so text is read at its size.
    fig = Figure(figsize=(7.9, 0.95 + 2.55 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).flatten()
    width = 0.2
    any_errors = False
    for ax, suite in zip(axes, suites, strict=False):  # a grid may have a spare cell
        by_system = {r.system: r for r in data.results if r.suite == suite}
        systems = [s for s in SYSTEMS if s in by_system]
        first = by_system[systems[0]]
        ax.set_title(f"{suite}  ({first.n_user_tasks} user tasks, {first.n_security_cases} injection cases)",
                     fontsize=9.5, fontweight="bold", loc="left")
        labels = []
        for x, system in enumerate(systems):
            row = by_system[system]
            for i, (field, _, colour, hatch) in enumerate(METRICS):
                cx = x + (i - (len(METRICS) - 1) / 2) * width
                value = getattr(row, field)
                if value is None:   # no case of this kind: no bar, and say so
                    ax.text(cx, 1.5, "n/a", ha="center", va="bottom", fontsize=7.5, color="#555555")
                    continue
                ax.bar(cx, 100 * value, width * 0.92, color=colour, hatch=hatch, edgecolor="white",
                       linewidth=0.4)
                ax.text(cx, 100 * value + 1.5, pct(value), ha="center", va="bottom", fontsize=7.5)
            label = system
            if row.n_errors:
                any_errors = True
                label += f"\n{row.n_errors} error{'s' if row.n_errors != 1 else ''}"
            labels.append(label)
        ax.set_xticks(range(len(systems)), labels)
        ax.set_xlim(-0.55, max(len(systems), 2) - 0.45)
        ax.set_ylim(0, 113)
        ax.set_yticks([0, 25, 50, 75, 100])
        ax.set_ylabel("%")
        ax.tick_params(axis="x", length=0, labelsize=9)
        ax.grid(axis="y", color="#dddddd", linewidth=0.6)
        ax.set_axisbelow(True)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    for ax in axes[len(suites):]:
        ax.set_visible(False)

    handles = [Patch(facecolor=c, hatch=h, edgecolor="white", label=lab) for _, lab, c, h in METRICS]
    # The title is the legend's own title: constrained layout places a suptitle and an "outside"
    # legend on top of each other, but makes room for one legend with its title.
    fig.legend(handles=handles, loc="outside upper center", ncol=len(METRICS), fontsize=8, frameon=False,
               handlelength=1.6, columnspacing=1.2, title=title(data), alignment="center",
               title_fontproperties={"size": 10})
    if any_errors:
        fig.supxlabel("errored cases are excluded from the rates", fontsize=7.5, color="#555555")
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, format="svg", metadata={"Date": None})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python figure/agentdojo.py", description=__doc__.split("\n\n")[1])
    parser.add_argument("--results", metavar="PATH", type=Path, default=DEFAULT_RESULTS,
                        help="the results file (default: evaluation/results/agentdojo.json)")
    parser.add_argument("--output", metavar="PATH", type=Path, default=DEFAULT_OUTPUT,
                        help="the SVG to write (default: figure/agentdojo.svg)")
    args = parser.parse_args(argv)
    try:
        import matplotlib  # noqa: F401 - only to say what to install before anything else
    except ImportError:
        print(f"{parser.prog}: matplotlib is not installed; {INSTALL}", file=sys.stderr)
        return 2
    try:
        data = load(args.results)
    except ResultsError as exc:
        print(f"{parser.prog}: {exc}", file=sys.stderr)
        return 2
    try:
        draw(data, args.output)
    except OSError as exc:
        print(f"{parser.prog}: could not write {args.output} ({exc.strerror})", file=sys.stderr)
        return 2
    print(args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
