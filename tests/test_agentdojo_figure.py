"""figure/agentdojo.py: the README's AgentDojo figure drawn from a results file. Every
figure here is drawn from a small synthetic file into a temp dir, never into the repository."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.figure_helpers import draw_without_matplotlib, one_line_refusal

pytest.importorskip("matplotlib")

SCRIPT = Path(__file__).resolve().parent.parent / "figure" / "agentdojo.py"
PRODUCE = "python -m evaluation.agentdojo --suite all"
METRICS = ("asr_cross_app", "asr_same_app", "utility", "utility_under_attack")   # the bars, left to right


def row(suite, system, asr_cross, asr_same, utility, under_attack, **extra) -> dict:
    return {"suite": suite, "system": system, "llm": "scripted-test-llm",
            "consent": "expected" if system == "SecGPT" else "n/a", "attack": "important_instructions",
            "utility": utility, "utility_under_attack": under_attack, "asr": asr_cross,
            "asr_cross_app": asr_cross, "asr_same_app": asr_same, "n_cross_app": 4, "n_same_app": 2,
            "n_security_cases": 6, "n_user_tasks": 3, "cases": [], **extra}


# Suites out of order in the file, every value distinct where it can be, a null rate, errors
# in one row and n_errors missing (an older file) in another.
ROWS = [
    row("travel", "VanillaGPT", 0.71, 0.83, 0.62, 0.44, n_errors=0),
    row("travel", "SecGPT", 0.02, 0.81, 0.58, 0.39, n_errors=0),
    row("slack", "VanillaGPT", 1.0, None, 0.9, 0.86, n_errors=0),
    row("slack", "SecGPT", 0.0, None, 0.88, 0.84, n_errors=2),
    row("workspace", "VanillaGPT", 0.57, 0.93, 0.47, 0.31),
    row("workspace", "SecGPT", 0.03, 0.52, 0.46, 0.29),
    row("banking", "VanillaGPT", 0.34, 0.68, 0.26, 0.11, n_errors=0),
    row("banking", "SecGPT", 0.04, 0.13, 0.24, 0.09, n_errors=0),
]


def results_file(tmp_path: Path, rows=ROWS, name="agentdojo.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps({"generated": "2000-01-01T00:00:00+00:00", "seconds": 1.0,
                                "benchmark_version": "v1.2.2", "results": rows}))
    return path


def draw(tmp_path: Path, results: Path, output: Path) -> subprocess.CompletedProcess:
    # cwd is the temp dir: nothing may land in the working directory either.
    return subprocess.run([sys.executable, str(SCRIPT), "--results", str(results), "--output", str(output)],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)


def texts(svg: Path) -> list[str]:
    root = ET.parse(svg).getroot()   # also: the SVG is well-formed XML
    return ["".join(t.itertext()) for t in root.iter("{http://www.w3.org/2000/svg}text")]


def test_figure_shows_every_suite_every_rate_and_the_errors(tmp_path):
    out = tmp_path / "figure.svg"
    done = draw(tmp_path, results_file(tmp_path), out)
    assert done.returncode == 0, done.stderr
    shown = texts(out)

    titles = [t for t in shown if t.split(" ")[0] in {"workspace", "slack", "banking", "travel"}]
    assert [t.split(" ")[0] for t in titles] == ["workspace", "slack", "banking", "travel"]

    # Every rate is printed on its bar, in suite, system and bar order; a null rate gets "n/a", not "0%".
    by_key = {(r["suite"], r["system"]): r for r in ROWS}
    expected = []
    for suite in ("workspace", "slack", "banking", "travel"):
        for system in ("VanillaGPT", "SecGPT"):
            for metric in METRICS:
                value = by_key[suite, system][metric]
                expected.append("n/a" if value is None else f"{100 * value:.0f}%")
    assert [t for t in shown if t == "n/a" or (t.endswith("%") and t != "%")] == expected

    assert "2 errors" in shown
    assert [t for t in shown if "error" in t and t != "2 errors"] == ["errored cases are excluded from the rates"]
    title = " ".join(shown)
    for part in ("AgentDojo v1.2.2", "scripted-test-llm", "SecGPT consent: expected"):
        assert part in title


def test_no_errors_no_error_note(tmp_path):
    out = tmp_path / "figure.svg"
    done = draw(tmp_path, results_file(tmp_path, [r for r in ROWS if r["suite"] == "workspace"]), out)
    assert done.returncode == 0, done.stderr
    shown = texts(out)
    assert not [t for t in shown if "error" in t]
    assert not [t for t in shown if t.split(" ")[0] in {"slack", "banking", "travel"}]


def test_same_results_give_the_same_bytes(tmp_path):
    results = results_file(tmp_path)
    first, second = tmp_path / "first.svg", tmp_path / "second.svg"
    assert draw(tmp_path, results, first).returncode == 0
    assert draw(tmp_path, results, second).returncode == 0
    assert first.read_bytes() == second.read_bytes()
    assert b"<dc:date>" not in first.read_bytes()


def test_missing_results_file_says_how_to_produce_it(tmp_path):
    out = tmp_path / "figure.svg"
    message = one_line_refusal(draw(tmp_path, tmp_path / "absent.json", out), out)
    assert "absent.json" in message and PRODUCE in message


MALFORMED = {
    "not JSON": "{\"results\": [",
    "a list": "[]",
    "no results": json.dumps({"benchmark_version": "v1.2.2", "results": []}),
    "no version": json.dumps({"results": ROWS}),
    "a rate over 1": json.dumps({"benchmark_version": "v1.2.2", "results": [{**ROWS[0], "utility": 1.5}]}),
    "a rate left out": json.dumps({"benchmark_version": "v1.2.2",
                                   "results": [{k: v for k, v in ROWS[0].items() if k != "asr_same_app"}]}),
    "an unknown system": json.dumps({"benchmark_version": "v1.2.2", "results": [{**ROWS[0], "system": "Other"}]}),
    "a rate as text": json.dumps({"benchmark_version": "v1.2.2", "results": [{**ROWS[0], "utility": "high"}]}),
    "a suite twice": json.dumps({"benchmark_version": "v1.2.2", "results": [ROWS[0], ROWS[0]]}),
}


@pytest.mark.parametrize("content", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_results_file_is_refused_in_one_line(tmp_path, content):
    results = tmp_path / "agentdojo.json"
    results.write_text(content)
    out = tmp_path / "figure.svg"
    message = one_line_refusal(draw(tmp_path, results, out), out)
    assert str(results) in message and PRODUCE in message


def test_without_matplotlib_says_what_to_install(tmp_path):
    out = tmp_path / "figure.svg"
    message = one_line_refusal(draw_without_matplotlib(tmp_path, SCRIPT, results_file(tmp_path), out), out)
    assert "pip install -r evaluation/agentdojo/requirements.txt" in message
