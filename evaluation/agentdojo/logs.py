"""Runs in: hub, vanillagpt (the evaluation's driver, beside the system under test).

One file per finished case, in AgentDojo's own log layout, so a stopped run resumes.

``<logdir>/<pipeline>/<suite>/<user_task>/<attack>/<injection_task|none>.json``, as
AgentDojo's ``TraceLogger`` writes it (a benign case: attack ``none``, file
``none.json``), with AgentDojo's fields (``utility``, ``security``, ``error`` as text,
``messages``, ``duration``, ...) so its ``load_task_results`` reads our logs, and ours
under ``secgpt`` (the typed error, the case's kind, prompts, miss reason). A file is
written whole or not at all (a temporary file renamed over), so a run killed mid-write
leaves no half case behind; a file that does not parse is run again.
"""

from __future__ import annotations

import json
import os
import tempfile
from importlib.metadata import version
from pathlib import Path

from evaluation.agentdojo.cases import is_secgpt
from evaluation.agentdojo.results import Case

ATTACK = "important_instructions"


def pipeline_name(system: str, llm: str, consent: str) -> str:
    """One directory per configuration: a resumed run never mixes in another one's cases."""
    name = f"{system.lower()}-{llm}"
    return f"{name}-consent-{consent}" if is_secgpt(system) else name


def case_path(logdir: Path, pipeline: str, suite: str, user_task: str, injection_task: str | None) -> Path:
    attack = ATTACK if injection_task else "none"
    return logdir / pipeline / suite / user_task / attack / f"{injection_task or 'none'}.json"


def write_case(path: Path, case: Case, *, pipeline: str, injections: dict[str, str], messages: list,
               security: bool, utility: bool) -> None:
    """``security`` and ``utility`` are AgentDojo's verdicts as its checks gave them (for an
    errored case too, with ``error`` set: AgentDojo's tools can tell); ``case`` is ours."""
    record = {
        "suite_name": case.suite, "pipeline_name": pipeline, "user_task_id": case.user_task,
        "injection_task_id": case.injection_task, "attack_type": ATTACK if case.injection_task else None,
        "injections": injections, "messages": messages,
        "error": None if case.error is None else f"{case.error['kind']}: {case.error['message']}",
        "utility": bool(utility), "security": bool(security), "duration": case.duration,
        "agentdojo_package_version": version("agentdojo"),
        "secgpt": case.__dict__,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".case-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(record, f, indent=1, default=_plain)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_case(path: Path) -> Case | None:
    """The case a log holds, or None when there is none to trust (missing, cut short, not ours)."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        return Case.from_dict(record["secgpt"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _plain(value):
    dump = getattr(value, "model_dump", None)
    return dump(mode="json") if dump else str(value)
