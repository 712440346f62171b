"""The benchmark command runs and reports every promised key, and writes nothing but its --output
(no timing is asserted here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from helpers.configs import paths

KEYS = {"llm_calls", "e2e_ratio_p50", "e2e_ratio_p75", "e2e_ratio_max", "spoke_start_p50_ms", "spoke_start_p95_ms",
        "rtt_p50_ms", "pss_per_idle_spoke_mb", "planner_prompt_chars", "prompt_chars", "messages_per_second",
        "strict_vs_faithful_total", "strict_vs_faithful_p50", "strict_vs_faithful_max", "strict_planner_prompt_chars",
        "e2e_instant", "e2e_latency", "e2e_tokens", "e2e_tokens_ratio_max", "targets"}
SYSTEMS = ("SecGPT", "VanillaGPT", "SecGPT-strict")


def _repository_files() -> dict[str, tuple[int, int]]:
    """Every file and directory of the repository (virtual environments, git and bytecode aside), with a
    file's size and mtime."""
    skip = {".git", ".venv", "__pycache__", ".venv-port", ".mypy_cache", ".ruff_cache", ".pytest_cache"}
    found = {}
    for path in paths.REPO_ROOT.rglob("*"):
        if skip.isdisjoint(path.relative_to(paths.REPO_ROOT).parts):
            stat = path.stat()
            found[str(path)] = (stat.st_size, stat.st_mtime_ns) if path.is_file() else (0, 0)
    return found


def test_quick_benchmark_runs(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "SECGPT_"))}
    before = _repository_files()
    result = subprocess.run([sys.executable, "-m", "evaluation.benchmarks", "--quick", "--json", "--latency-ms", "20",
                             "--ttft-ms", "10", "--ms-per-token", "0.05", "--no-port",
                             "--output", str(tmp_path / "benchmarks.json")],
                            capture_output=True, text=True, timeout=300, cwd=paths.REPO_ROOT, env=env)
    assert result.returncode == 0, result.stderr
    assert _repository_files() == before  # its data (memory, permissions, audit, app dirs) went to a scratch dir
    report = json.loads(result.stdout)
    assert report["e2e_tokens"]["latency"] == {"kind": "tokens", "fixed_ms": 0.0, "ttft_ms": 10.0, "ms_per_token": 0.05}
    assert report["e2e_latency"]["latency"]["fixed_ms"] == 20
    for run in ("e2e_latency", "e2e_tokens"):
        prefetch = report[run]["prefetch"]["SecGPT"]
        no_app = [r for r in report[run]["queries"] if r["kind"] == "no app"]
        assert prefetch["used"] == len(no_app) and prefetch["wasted"] == prefetch["missed"] == 0
        assert all(r["SecGPT"]["llm_calls"] == 3 and r["SecGPT"]["route"] == "vanilla" for r in no_app)
    assert json.loads((tmp_path / "benchmarks.json").read_text()) == report
    assert KEYS <= set(report)
    assert set(report["llm_calls"]) == set(SYSTEMS)
    rows = report["e2e_latency"]["queries"]
    assert {r["kind"] for r in rows} == {"no app", "one app", "two apps", "dependent", "cross-app"}
    assert all("Sorry" not in r[system]["answer"] for r in rows for system in SYSTEMS)
    fares = [r for r in rows if r["kind"] == "one app" and "metro_hail" in r["query"]]
    assert all("$" in r[system]["answer"] for r in fares for system in ("SecGPT", "SecGPT-strict"))
    # Each system did the work it is timed on: both fares compared, the fare mailed, no tool error.
    for r in rows:
        for system in SYSTEMS:
            answer = r[system]["answer"]
            assert "Error" not in answer and "could not" not in answer, (system, answer)
            if r["kind"] == "two apps":
                assert answer.count("$") == 2, (system, answer)
            if r["kind"] == "dependent":
                assert "$" in answer and "Message sent" in answer, (system, answer)
