"""The benchmark's optional LlamaIndex-port row (evaluation/benchmarks/port.py): a missing or
broken port is one skip line with the install commands, never an exception; the driver's report
is checked and summed up; and, where the port's environment is installed, a real run reports
every query kind. No timing is asserted here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from evaluation.benchmarks import port
from evaluation.benchmarks.queries import QUICK
from helpers.llm.latency import LatencyModel

INSTALL = ("python3 -m venv .venv-port && "
           ".venv-port/bin/pip install -r evaluation/benchmarks/port-requirements.txt")
KINDS = {"no app", "one app", "two apps", "dependent", "cross-app"}


def is_skip_line(result: dict) -> str:
    assert set(result) == {"skipped"}
    line = result["skipped"]
    assert "\n" not in line and INSTALL in line
    return line


def fake_python(tmp_path: Path, stdout: str = "", stderr: str = "", status: int = 0, sleep: int = 0) -> Path:
    """An executable that stands where the port's Python would: it keeps the request it is sent
    and prints what a driver might."""
    (tmp_path / "stdout").write_text(stdout)
    (tmp_path / "stderr").write_text(stderr)
    script = tmp_path / "python"
    body = f"exec sleep {sleep}\n" if sleep else \
        f'cat > "{tmp_path}/request.json"\ncat "{tmp_path}/stdout"\ncat "{tmp_path}/stderr" >&2\nexit {status}\n'
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(0o755)
    return script


def run_(port_report: dict, tmp_path: Path) -> tuple[dict, dict]:
    result = port.run(LatencyModel(fixed_s=0.25), True, fake_python(tmp_path, stdout=json.dumps(port_report)))
    return result, json.loads((tmp_path / "request.json").read_text())


def timed(seconds: float, calls: int, spokes: int = 0) -> dict:
    return {"seconds": seconds, "llm_calls": calls, "spoke_processes": spokes, "answer": "ok"}


def report(rows: list[dict], **extra) -> dict:
    return {"port": "llama-index-packs-secgpt 0.3.1", "llama_index_core": "0.12.52.post1", "baseline": "ReActAgent",
            "latency": LatencyModel(fixed_s=0.25).as_dict(), "rows": rows, "spoke_pss_mb": 76.5, **extra}


# ---- a port that is not there, or broken -----------------------------------------------------

def test_a_missing_interpreter_is_a_skip_line(tmp_path):
    line = is_skip_line(port.run(LatencyModel(), True, tmp_path / "absent" / "python"))
    assert "absent" in line and "--port-python" in line


def test_no_venv_and_no_variable_is_a_skip_line(tmp_path, monkeypatch):
    monkeypatch.delenv(port.ENV_PYTHON, raising=False)
    monkeypatch.setattr(port, "DEFAULT_PYTHON", tmp_path / ".venv-port" / "bin" / "python")
    monkeypatch.setattr(port, "ROOT", tmp_path)
    line = is_skip_line(port.run(LatencyModel(), True, None))
    assert ".venv-port" in line and "--port-python" in line and port.ENV_PYTHON in line


def test_the_variable_names_the_interpreter(tmp_path, monkeypatch):
    monkeypatch.setenv(port.ENV_PYTHON, str(tmp_path / "elsewhere" / "python"))
    line = is_skip_line(port.run(LatencyModel(), True, None))
    assert "elsewhere" in line and port.ENV_PYTHON in line


def test_an_environment_without_the_port_is_a_skip_line(tmp_path):
    # A real, empty virtual environment: the driver starts, and cannot import the pack.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "venv")], check=True, timeout=120)
    line = is_skip_line(port.run(LatencyModel(), True, tmp_path / "venv" / "bin" / "python"))
    assert "broken" in line and "llama_index" in line


def test_an_interpreter_that_cannot_run_is_a_skip_line(tmp_path):
    not_executable = tmp_path / "python"
    not_executable.write_text("not a program")
    line = is_skip_line(port.run(LatencyModel(), True, not_executable))
    assert "cannot be run" in line


@pytest.mark.parametrize(("stdout", "status", "expected"), [
    ("not JSON at all", 0, "printed no report"),
    (json.dumps({"rows": []}), 0, "printed no report"),
    (json.dumps(report([], surprise=1)), 0, "printed no report"),
    ("", 1, "failed with status 1 (Traceback line)"),
    ("", 3, "broken (Traceback line)"),
], ids=["garbage", "fields missing", "unknown field", "crash", "import failure"])
def test_a_driver_failure_is_a_skip_line(tmp_path, stdout, status, expected):
    python = fake_python(tmp_path, stdout=stdout, stderr="noise\nTraceback line\n", status=status)
    assert expected in is_skip_line(port.run(LatencyModel(), True, python))


def test_a_driver_that_hangs_is_stopped(tmp_path):
    line = is_skip_line(port.run(LatencyModel(), True, fake_python(tmp_path, sleep=60), timeout_s=1))
    assert "no report within 1 s" in line


# ---- the report, summed up -------------------------------------------------------------------

def test_the_driver_is_sent_the_queries_and_the_latency(tmp_path):
    _, request = run_(report([]), tmp_path)
    assert [tuple(q) for q in request["queries"]] == QUICK
    assert request["latency"] == LatencyModel(fixed_s=0.25).as_dict()


def test_the_report_is_summed_up(tmp_path):
    rows = [
        {"kind": "no app", "query": "q1", "port": timed(2.0, 2), "baseline": timed(1.0, 1)},
        {"kind": "one app", "query": "q2", "port": timed(3.0, 3, 1), "baseline": timed(2.0, 2)},
        {"kind": "two apps", "query": "q3", "port": timed(8.0, 8, 3), "baseline": timed(2.0, 3)},
        {"kind": "dependent", "query": "q4", "port": {"error": "KeyError: 'steps'"}, "baseline": timed(1.5, 3)},
    ]
    not_run = [{"kind": "new kind", "query": "q5", "reason": "the port's driver has no script for this kind"}]
    result, _ = run_(report(rows, not_run=not_run), tmp_path)
    assert [r["query"] for r in result["rows"]] == ["q1", "q2", "q3"]   # the errored query is left out
    assert [r["ratio"] for r in result["rows"]] == [2.0, 1.5, 4.0]
    assert result["rows"][2]["llm_calls"] == {"port": 8, "baseline": 3}
    assert result["rows"][2]["spoke_processes"] == 3
    assert (result["ratio_p50"], result["ratio_p75"], result["ratio_max"]) == (2.0, 3.0, 4.0)
    assert result["llm_calls"] == {"port": round(13 / 3, 2), "baseline": 2.0}
    assert result["errors"] == [{"kind": "dependent", "query": "q4", "system": "port", "error": "KeyError: 'steps'"}]
    assert result["not_run"] == not_run
    assert result["spoke_pss_mb"] == 76.5
    assert result["port"] == "llama-index-packs-secgpt 0.3.1"
    json.dumps(result)   # it goes into the benchmark's JSON file as it is


def test_no_timed_query_gives_no_figure(tmp_path):
    rows = [{"kind": "no app", "query": "q1", "port": {"error": "boom"}, "baseline": timed(1.0, 1)}]
    result, _ = run_(report(rows), tmp_path)
    assert result["rows"] == [] and result["ratio_p50"] is None and result["ratio_max"] is None
    assert result["errors"][0]["error"] == "boom"


# ---- the real port, where its environment is installed ---------------------------------------

def installed_port() -> Path | None:
    python, _ = port.port_python(None)
    return python if python is not None and python.exists() else None


@pytest.mark.skipif(installed_port() is None,
                    reason=f"the LlamaIndex port's environment is not installed ({INSTALL}); CI does not install it")
def test_the_port_runs_every_query_kind(tmp_path):
    before = set(os.listdir(port.ROOT))
    result = port.run(LatencyModel(), True, installed_port())
    assert "skipped" not in result, result.get("skipped")
    assert result["errors"] == [] and result["not_run"] == []
    rows = result["rows"]
    assert {r["kind"] for r in rows} == KINDS and len(rows) == len(QUICK)
    for r in rows:
        answers = r["answers"]
        if r["kind"] == "no app":
            assert r["spoke_processes"] == 0
        else:   # the port sent the query to a spoke, and both systems did the query's work
            assert r["spoke_processes"] >= 1
            assert r["llm_calls"]["port"] > r["llm_calls"]["baseline"]
        if "fare" in r["query"]:
            expected = 2 if r["kind"] in ("two apps", "cross-app") else 1
            assert all(a.count("$") == expected for a in answers.values()), answers
        if r["kind"] == "dependent":
            assert all("Message sent" in a for a in answers.values()), answers
    assert result["spoke_pss_mb"] > 0
    assert set(os.listdir(port.ROOT)) == before   # the port's permission file went to a temp dir
