"""figure/latency.py: the README's latency figure drawn from a benchmark results file. Every
figure here is drawn from a small synthetic file into a temp dir, never into the repository."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.figure_helpers import draw_without_matplotlib, one_line_refusal

pytest.importorskip("matplotlib")

SCRIPT = Path(__file__).resolve().parent.parent / "figure" / "latency.py"
PRODUCE = "python -m evaluation.benchmarks"
PAPER_GREEN = "#009e73"   # the 1.30 line's colour, as matplotlib writes it
PORT_ORANGE = "#d55e00"   # the port's markers


def query(kind: str, text: str, secgpt: float, vanilla: float, strict: float) -> dict:
    return {"kind": kind, "query": text, "SecGPT": {"seconds": secgpt, "llm_calls": 2, "answer": "a"},
            "VanillaGPT": {"seconds": vanilla, "llm_calls": 1, "answer": "a"},
            "SecGPT-strict": {"seconds": strict, "llm_calls": 2, "answer": "a"},
            "ratio": secgpt / vanilla, "strict_ratio": strict / secgpt}


# SecGPT / VanillaGPT: 1.5, 1.0, 1.2, 1.4 (2 of 4 within 1.30); strict: 1.6, 1.1, 1.2, 1.0 (3 of 4).
QUERIES = [query("no app", "Tell me a joke.", 1.5, 1.0, 1.6), query("one app", "A fare?", 2.0, 2.0, 2.2),
           query("one app", "Convert 12 km.", 2.4, 2.0, 2.4), query("two apps", "Compare fares.", 4.2, 3.0, 3.0)]


def e2e(kind: str, described: str, queries=QUERIES) -> dict:
    return {"latency_ms": 500 if kind == "fixed" else 0, "latency": {"kind": kind}, "latency_model": described,
            "queries": queries, "e2e_ratio_p50": 1.3}


def port_rows(ratios: list[float]) -> dict:
    rows = [{"kind": q["kind"], "query": q["query"], "port_seconds": r, "baseline_seconds": 1.0, "ratio": r,
             "llm_calls": {"port": 3, "baseline": 2}} for q, r in zip(QUERIES, ratios, strict=True)]
    return {"rows": rows, "ratio_p50": 2.0, "ratio_max": max(ratios), "llm_calls": {"port": 4.5, "baseline": 2.2}}


def results(**sections) -> dict:
    base = {"generated": "2000-01-01T00:00:00+00:00", "quick": False,
            "e2e_latency": e2e("fixed", "fixed 500 ms per call"),
            "e2e_tokens": e2e("tokens", "tokens: 390 ms to the first token + 12.3 ms per output token"),
            # port: 2.0, 1.2, 2.5, 2.8 at the fixed latency (1 of 4 within 1.30); not installed for tokens
            "port": {"fixed": port_rows([2.0, 1.2, 2.5, 2.8]),
                     "tokens": {"skipped": "LlamaIndex port not measured: no .venv-port/bin/python"}}}
    base.update(sections)
    return {k: v for k, v in base.items() if v is not None}


def results_file(tmp_path: Path, data: dict, name: str = "benchmarks.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def draw(tmp_path: Path, results: Path, output: Path) -> subprocess.CompletedProcess:
    # cwd is the temp dir: nothing may land in the working directory either.
    return subprocess.run([sys.executable, str(SCRIPT), "--results", str(results), "--output", str(output)],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)


def drawn(tmp_path: Path, data: dict) -> Path:
    out = tmp_path / "figure.svg"
    done = draw(tmp_path, results_file(tmp_path, data), out)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(out)
    return out


def texts(svg: Path) -> list[str]:
    root = ET.parse(svg).getroot()   # also: the SVG is well-formed XML
    return ["".join(t.itertext()) for t in root.iter("{http://www.w3.org/2000/svg}text")]


def paper_lines(svg: Path) -> int:
    """Drawn lines in the 1.30 line's colour: one per panel, and the legend's sample."""
    return len(re.findall(rf"stroke: ?{PAPER_GREEN}", svg.read_text()))


def port_markers(svg: Path) -> int:
    return len(re.findall(rf"fill: ?{PORT_ORANGE}", svg.read_text()))


def counts(shown: list[str]) -> list[str]:
    return [t for t in shown if t.startswith("queries ≤ 1.30:")]


def test_one_panel_per_latency_model_with_the_paper_line_and_each_series(tmp_path):
    out = drawn(tmp_path, results())
    shown = texts(out)
    assert [t for t in shown if t.startswith(("fixed", "tokens"))] == [
        "fixed 500 ms per call", "tokens: 390 ms to the first token + 12.3 ms per output token"]
    assert "IsolateGPT paper (GPT-4): ≤ 1.30 for 75.7% of its queries" in shown
    assert paper_lines(out) == 3
    # Per panel, how many queries each series has within 1.30, from the seconds in the file; the
    # port is measured at the fixed latency only, and the tokens panel says so.
    assert counts(shown) == ["queries ≤ 1.30: SecGPT 2 of 4, strict 3 of 4, port 1 of 4",
                             "queries ≤ 1.30: SecGPT 2 of 4, strict 3 of 4, port: not measured"]
    assert {"SecGPT / VanillaGPT", "SecGPT strict / VanillaGPT", "LlamaIndex port / its baseline"} <= set(shown)
    assert "port: not measured" not in shown   # the legend has the port: one panel measured it
    assert port_markers(out) >= 4
    for kind in ("no app", "one app", "two apps"):
        assert shown.count(kind) == 2   # one label per kind under each panel


def test_without_the_port_the_legend_says_not_measured(tmp_path):
    out = drawn(tmp_path, results(port=None))
    shown = texts(out)
    assert "port: not measured" in shown
    assert "LlamaIndex port / its baseline" not in shown
    assert port_markers(out) == 0
    assert counts(shown) == ["queries ≤ 1.30: SecGPT 2 of 4, strict 3 of 4, port: not measured"] * 2
    assert paper_lines(out) == 3


def test_a_file_from_before_the_tokens_model_draws_one_panel(tmp_path):
    old = copy.deepcopy(e2e("fixed", "unused"))
    del old["latency"], old["latency_model"]
    for q in old["queries"]:
        del q["SecGPT-strict"]
    out = drawn(tmp_path, results(e2e_latency=old, e2e_tokens=None, port=None))
    shown = texts(out)
    assert "fixed 500 ms per call" in shown and not [t for t in shown if t.startswith("tokens")]
    assert counts(shown) == ["queries ≤ 1.30: SecGPT 2 of 4, port: not measured"]
    assert "SecGPT strict / VanillaGPT" not in shown
    assert paper_lines(out) == 2


def test_same_results_give_the_same_bytes(tmp_path):
    path = results_file(tmp_path, results())
    first, second = tmp_path / "first.svg", tmp_path / "second.svg"
    assert draw(tmp_path, path, first).returncode == 0
    assert draw(tmp_path, path, second).returncode == 0
    assert first.read_bytes() == second.read_bytes()
    assert b"<dc:date>" not in first.read_bytes()


def test_missing_results_file_says_how_to_produce_it(tmp_path):
    out = tmp_path / "figure.svg"
    message = one_line_refusal(draw(tmp_path, tmp_path / "absent.json", out), out)
    assert "absent.json" in message and PRODUCE in message


def _broken_query(**change) -> dict:
    return results(e2e_latency=e2e("fixed", "fixed 500 ms per call", [{**QUERIES[0], **change}, *QUERIES[1:]]))


MALFORMED = {
    "not JSON": "{\"e2e_latency\": [",
    "a list": "[]",
    "no latency section": json.dumps(results(e2e_latency=None, e2e_tokens=None)),
    "no queries": json.dumps(results(e2e_latency=e2e("fixed", "x", []))),
    "VanillaGPT left out": json.dumps(_broken_query(VanillaGPT=None)),
    "a zero time": json.dumps(_broken_query(VanillaGPT={"seconds": 0})),
    "a time as text": json.dumps(_broken_query(SecGPT={"seconds": "fast"})),
    "an unknown latency model": json.dumps(results(e2e_tokens={**e2e("tokens", "x"), "latency": {"kind": "gpu"}})),
    "two sections of one model": json.dumps(results(e2e_tokens=e2e("fixed", "x"))),
    "a port row neither measured nor skipped": json.dumps(results(port={"fixed": {"ratio_p50": 2.0}})),
    "a port of an unknown model": json.dumps(results(port={"instant": {"skipped": "x"}})),
}


@pytest.mark.parametrize("content", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_results_file_is_refused_in_one_line(tmp_path, content):
    path = tmp_path / "benchmarks.json"
    path.write_text(content)
    out = tmp_path / "figure.svg"
    message = one_line_refusal(draw(tmp_path, path, out), out)
    assert str(path) in message and PRODUCE in message


def test_without_matplotlib_says_what_to_install(tmp_path):
    out = tmp_path / "figure.svg"
    message = one_line_refusal(draw_without_matplotlib(tmp_path, SCRIPT, results_file(tmp_path, results()), out), out)
    assert "pip install -r evaluation/agentdojo/requirements.txt" in message
