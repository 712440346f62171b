"""Runs in: offline (the benchmark's runner for the LlamaIndex port, which runs in its own environment).

The benchmark's optional row: the LlamaIndex port of SecGPT (PyPI ``llama-index-packs-secgpt``)
timed against its own baseline on the same queries and the same simulated LLM latency. The port
pins llama-index-core 0.12 and langchain-core < 0.2, which the core install cannot hold beside its
own, so it lives in a virtual environment of its own and port_driver.py runs there, in a
subprocess; this module starts it, reads its report and sums it up.

Where the port's Python is: ``python`` if given (``--port-python``), else ``SECGPT_PORT_PYTHON``,
else ``.venv-port/bin/python`` at the repository root. A port that is not installed, or whose
environment cannot import it, is a skipped row with one line saying why and how to install it,
never an exception: the row is optional.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from evaluation.benchmarks.queries import QUERIES, QUICK
from helpers.llm.latency import LatencyModel

ROOT = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).resolve().with_name("port_driver.py")
DEFAULT_PYTHON = ROOT / ".venv-port" / "bin" / "python"
ENV_PYTHON = "SECGPT_PORT_PYTHON"
INSTALL = ("python3 -m venv .venv-port && "
           ".venv-port/bin/pip install -r evaluation/benchmarks/port-requirements.txt")
UNAVAILABLE = 3        # port_driver.py's exit status when the port cannot be imported
QUERY_TIMEOUT_S = 60   # one query on one system; the driver reports it as an error past that


class SystemRun(BaseModel):
    """One query on the port's hub or on its baseline: timed, or the error it ended in."""
    model_config = ConfigDict(extra="forbid")

    seconds: float | None = Field(default=None, ge=0)
    llm_calls: int | None = Field(default=None, ge=0)
    spoke_processes: int | None = Field(default=None, ge=0)
    answer: str | None = None
    error: str | None = None


class DriverRow(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: str
    query: str
    port: SystemRun
    baseline: SystemRun


class NotRun(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: str
    query: str
    reason: str


class DriverReport(BaseModel):
    """What port_driver.py prints: it comes from another environment, so it is checked here."""
    model_config = ConfigDict(extra="forbid")

    port: str
    llama_index_core: str
    baseline: str
    latency: dict[str, Any]
    rows: list[DriverRow]
    not_run: list[NotRun] = []
    spoke_pss_mb: float | None = None


def port_python(python: Path | None) -> tuple[Path | None, str]:
    """The port's interpreter and where that choice came from (for the skip line)."""
    if python is not None:
        return python, "--port-python"
    if os.environ.get(ENV_PYTHON):
        return Path(os.environ[ENV_PYTHON]), ENV_PYTHON
    return (DEFAULT_PYTHON if DEFAULT_PYTHON.exists() else None), ".venv-port"


def skipped(why: str) -> dict:
    return {"skipped": f"LlamaIndex port not measured: {why}; install it with `{INSTALL}`"}


def run(latency: LatencyModel, quick: bool, python: Path | None, *, timeout_s: float | None = None) -> dict:
    """The port's row at this latency, or ``{"skipped": one line}``."""
    queries = QUICK if quick else QUERIES
    interpreter, source = port_python(python)
    if interpreter is None:
        return skipped(f"no {DEFAULT_PYTHON.relative_to(ROOT)} (or name one with --port-python or {ENV_PYTHON})")
    if not interpreter.exists():
        return skipped(f"{interpreter} (from {source}) does not exist")
    request = {"queries": [list(q) for q in queries], "latency": latency.as_dict(),
               "query_timeout_s": QUERY_TIMEOUT_S, "pss": True}
    # Each query runs on two systems, each call waits the latency: allow them all, plus the imports.
    limit = timeout_s if timeout_s is not None else 90 + 2 * QUERY_TIMEOUT_S * len(queries)
    # No key reaches the port (its LLM is the driver's scripted one), and nothing is written into
    # the repository: the driver works in a temporary directory, without bytecode files.
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    try:
        done = subprocess.run([str(interpreter), str(DRIVER)], input=json.dumps(request), capture_output=True,
                              text=True, timeout=limit, env=env, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return skipped(f"its driver gave no report within {limit:.0f} s")
    except OSError as exc:
        return skipped(f"{interpreter} (from {source}) cannot be run ({exc.strerror})")
    last = (done.stderr.strip().splitlines() or ["no message"])[-1]
    if done.returncode == UNAVAILABLE:
        return skipped(f"the environment of {interpreter} is broken ({last})")
    if done.returncode != 0:
        return skipped(f"its driver failed with status {done.returncode} ({last})")
    try:
        report = DriverReport.model_validate_json(done.stdout)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "top level"
        return skipped(f"its driver printed no report this benchmark reads ({where}: {first['msg']})")
    return summary(report, interpreter)


def summary(report: DriverReport, interpreter: Path) -> dict:
    """Per query and overall: time ratio port / baseline and LLM calls. A query that errored
    on either system is listed apart and left out of every figure."""
    rows, errors = [], []
    for r in report.rows:
        failed = [(name, one.error) for name, one in (("port", r.port), ("baseline", r.baseline))
                  if one.error is not None or one.seconds is None or one.llm_calls is None]
        if failed:
            errors += [{"kind": r.kind, "query": r.query, "system": name, "error": error or "no timing"}
                       for name, error in failed]
            continue
        port_s, base_s = r.port.seconds or 0.0, r.baseline.seconds or 0.0
        rows.append({"kind": r.kind, "query": r.query, "port_seconds": round(port_s, 4),
                     "baseline_seconds": round(base_s, 4), "ratio": round(port_s / base_s, 3) if base_s else None,
                     "llm_calls": {"port": r.port.llm_calls, "baseline": r.baseline.llm_calls},
                     "spoke_processes": r.port.spoke_processes,
                     "answers": {"port": r.port.answer, "baseline": r.baseline.answer}})
    ratios = [r["ratio"] for r in rows if r["ratio"] is not None]
    result: dict[str, Any] = {
        "port": report.port, "llama_index_core": report.llama_index_core, "baseline": report.baseline,
        "python": str(interpreter), "latency": report.latency, "rows": rows, "errors": errors,
        "not_run": [n.model_dump() for n in report.not_run], "spoke_pss_mb": report.spoke_pss_mb,
    }
    if not ratios:
        return {**result, "ratio_p50": None, "ratio_p75": None, "ratio_max": None,
                "llm_calls": {"port": None, "baseline": None}}
    return {**result,
            "ratio_p50": round(statistics.median(ratios), 3),
            "ratio_p75": round(statistics.quantiles(ratios, n=4, method="inclusive")[2], 3) if len(ratios) > 1
            else round(ratios[0], 3),
            "ratio_max": round(max(ratios), 3),
            "llm_calls": {s: round(statistics.mean(r["llm_calls"][s] for r in rows), 2) for s in ("port", "baseline")}}
