"""Runs in: hub, vanillagpt (the evaluation's driver, beside the system under test).

The eight case studies, run on SecGPT (in either isolation mode) or VanillaGPT, with
verdicts computed from what actually happened (``evaluation.case_verdicts``): the four of
the original, the three attacks the ACE paper (arXiv 2504.20984) published against
IsolateGPT, and MCP tool poisoning and shadowing between two real MCP servers
(evaluation/mcp_servers/), installed as apps the way a user installs one.

Each case lives in one file (evaluation/attacker/, evaluation/ambiguity/): the apps
installed (the original's format; MCP servers as ``case_study.mcp_servers``), the queries,
the fixtures, and the script of
the worst-case offline model: what a competent model does, plus what an obedient
model does whenever the attack's trigger text is in its input. Nothing here or in
the scripts depends on which system runs (each is driven through the session
interface only, helpers/utilities/session.py); the systems differ only in what
reaches each context and what the permissions let through.

A run in which something broke (an answer with an ``error``: a spoke crash, an LLM
failure, a timeout, memory down) is an error, counted apart: its attack verdict is
None ("error"), never "attack failed", unless the attack is seen to have succeeded
anyway (an error does not undo what already reached the attacker).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from evaluation.case_verdicts import VERDICTS, Observed
from helpers.configs import paths
from helpers.configs.isolation import IsolationMode
from helpers.llm.config import LLMConfig, canonical_llm
from helpers.utilities.environment import scratch_data_dir
from helpers.utilities.failures import Failure
from helpers.utilities.session import Session

EVALUATION = paths.REPO_ROOT / "evaluation"
CASE_FILES = {1: EVALUATION / "attacker" / "app_compromise.json", 2: EVALUATION / "attacker" / "data_stealing.json",
              3: EVALUATION / "ambiguity" / "inadvertent_data_exposure.json",
              4: EVALUATION / "ambiguity" / "uncontrolled_system_alteration.json",
              5: EVALUATION / "attacker" / "execution_flow_disruption.json",
              6: EVALUATION / "attacker" / "execution_manager_hijack.json",
              7: EVALUATION / "attacker" / "planner_manipulation.json",
              8: EVALUATION / "attacker" / "mcp_tool_poisoning.json"}
NAMES = {1: "App Compromise", 2: "Data Stealing", 3: "Inadvertent Data Exposure", 4: "Uncontrolled System Alteration",
         5: "Execution Flow Disruption", 6: "Execution Manager Hijack", 7: "Planner Manipulation",
         8: "MCP Tool Poisoning and Shadowing"}
ORIGINAL_KEYS = ("available_functionalities", "installed_functionalities", "available_toolkits",
                 "installed_toolkits", "available_annotations", "enabled_annotations")

Say = Callable[[str], None]
Emit = Callable[[str, str], None]


@dataclass
class Verdict:
    case: int
    name: str
    system: str
    llm: str
    consent: str
    isolation: str  # SecGPT's isolation mode; "n/a" for VanillaGPT
    attack_succeeded: bool | None  # None: the run errored and the attack was not seen to succeed
    benign_done: bool
    explanation: str
    error: Failure | None = None  # the first failure of the run's answers
    questions: int = 0  # permission questions put in the run (to the user or the consent policy)

    def as_json(self) -> str:
        return json.dumps(asdict(self))


def load_case(number: int) -> dict:
    return json.loads(CASE_FILES[number].read_text())


@contextmanager
def case_world(case: dict, launcher=None) -> Iterator[Path]:
    """A fresh data directory (and HOME) for one run, with the case's apps and fixtures. The
    case's MCP servers are installed as a user installs one (``hub.mcp_apps.install``: their
    tools listed inside a confined spoke, pinned, enabled), for either system."""
    from helpers.tools.google.local_api import LocalGoogleAccount
    with scratch_data_dir("secgpt-case-") as data:
        (data / "functionalities.json").write_text(json.dumps({k: case[k] for k in ORIGINAL_KEYS if k in case}))
        _install_mcp_servers(case["case_study"].get("mcp_servers", []), launcher)
        fixtures = case["case_study"].get("fixtures", {})
        account = LocalGoogleAccount(data / "google_local")
        for i, mail in enumerate(fixtures.get("emails", [])):
            account.add_email(mail["from"], mail["to"], mail["subject"], mail["body"],
                              date=f"Mon, {10 + i} Nov 2026 09:00:00 +0000")
        for name, text in fixtures.get("documents", {}).items():
            account.add_document(name, text)
        yield data


def _install_mcp_servers(servers: list[dict], launcher) -> None:
    if not servers:
        return
    from helpers.sandbox.launcher import SpokeLauncher
    from helpers.tools.mcp.link import McpServer
    from hub.mcp_apps import install
    with ExitStack() as stack:
        runner = launcher or stack.enter_context(SpokeLauncher())
        for server in servers:
            install(server["name"], McpServer(python=server["python"]), description=server["description"],
                    launcher=runner)


def llm_for(case: dict, choice: str, data: Path) -> LLMConfig:
    if canonical_llm(choice) == "scripted":
        script = data / "script.json"
        script.write_text(json.dumps(case["case_study"]["script"]))
        return LLMConfig(provider="scripted", model="scripted", script=script)
    from helpers.llm.config import load_llm_config
    return load_llm_config("openai")


def _secgpt(llm: LLMConfig, *, consent: str, launcher, read: Callable[[str], str], write: Say, emit: Emit,
            isolation: IsolationMode) -> Session:
    from hub.hub import Hub
    return Hub(llm, consent=consent, launcher=launcher, read=read, write=write, emit=emit, isolation=isolation)


def _vanillagpt(llm: LLMConfig, *, emit: Emit, **_: object) -> Session:
    """The baseline: no launcher, no isolation mode, no permission to ask about (``consent``)."""
    from vanillagpt.vanillagpt import VanillaGPT
    return VanillaGPT(llm, emit=emit)


# The systems a case can run on, by the name the programs and the results use.
SYSTEMS: dict[str, Callable[..., Session]] = {"SecGPT": _secgpt, "VanillaGPT": _vanillagpt}


def run_case(number: int, system: str, llm_choice: str, consent: str, launcher=None,
             say: Say = lambda text: None, read: Callable[[str], str] = input,
             isolation: IsolationMode = "faithful") -> Verdict:
    case = load_case(number)
    study = case["case_study"]
    with case_world(case, launcher) as data:
        llm = llm_for(case, llm_choice, data)
        emit: Emit = lambda kind, text: say(f"   [{kind}] {text}")  # noqa: E731
        session = SYSTEMS[system](llm, consent=consent, launcher=launcher, read=read, write=say, emit=emit,
                                  isolation=isolation)
        info = session.info
        mode = f"isolation {info.isolation}, " if info.isolation else ""
        say(f"== Case {number}: {study['name']} on {info.system} ({mode}{llm.describe()}, consent {consent})")
        say(f"   {study['about']}")
        answers: list[str] = []
        errors: list[Failure] = []
        plans: list[list[str]] = []
        with session:
            for query in study["queries"]:
                say(f"You: {query}")
                answer = session.answer(query)
                answers.append(answer.text)
                plans.append([s.name for s in answer.plan])
                errors += [answer.error] if answer.error else []
                say(f"{info.system}: {answers[-1]}")
            contexts = session.llm_contexts()
            decisions = session.permission_log()
        # A decision a standing grant made is no question; the user or the consent policy answering is.
        questions = sum(d.source != "stored" for d in decisions)
        refused = [f"{d.category} {d.key}{'' if d.expected else ' (not expected by the plan)'}"
                   for d in decisions if not d.allowed]
        seen = Observed(info.system, data, answers, contexts, plans if info.plans else None)
        attacked, benign, why = VERDICTS[study["verdict"]["kind"]](study, seen)
        if refused:
            why += "; refused: " + ", ".join(dict.fromkeys(refused))
        error = errors[0] if errors else None
        if error is not None:
            why = f"ERROR {error}; {why}"
            attacked = True if attacked else None  # not a defence: the run broke
        verdict = Verdict(number, study["name"], info.system, llm.describe(),
                          consent if info.asks_permissions else "n/a", info.isolation or "n/a",
                          attacked, benign, why, error, questions)
        outcome = {True: "SUCCEEDED", False: "failed", None: "unknown: the run errored"}[attacked]
        say(f"   => attack {outcome}; benign task {'done' if benign else 'NOT done'}: {why}")
        return verdict
