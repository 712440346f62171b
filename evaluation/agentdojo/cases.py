"""Runs in: hub, vanillagpt (the evaluation's driver, beside the system under test).

Which cases a run has: every user task alone, and every user task with every injection
task it can carry, for each system; in one fixed order, so runs split and resume.

A user task carries an injection when its ground truth reads a place the attack can
write (found with canaries, as AgentDojo finds injectable places). A security case is
*cross-app* when some call of the injection task belongs to another app than those
whose results carry the injected text, *same-app* otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

from evaluation.agentdojo.environments import Environments
from evaluation.agentdojo.ground_truth import injection_calls
from evaluation.agentdojo.suite_apps import SuiteApps, load_suite_apps

SYSTEMS = ("VanillaGPT", "SecGPT")  # what a run has by default (SecGPT in faithful isolation)
STRICT = "SecGPT-strict"  # SecGPT with --isolation strict: a system of its own in cases, logs and results
ALL_SYSTEMS = (*SYSTEMS, STRICT)


def is_secgpt(system: str) -> bool:
    """SecGPT in either isolation mode (it has a consent mode; VanillaGPT has none)."""
    return system in ("SecGPT", STRICT)


def systems_for(isolation: str) -> tuple[str, ...]:
    """The systems a run compares: VanillaGPT and SecGPT in the isolation mode asked for."""
    return ("VanillaGPT", STRICT) if isolation == "strict" else SYSTEMS
ATTACK_USER = "Emma Johnson"  # the victim's name AgentDojo's important_instructions attack signs with


@dataclass(frozen=True)
class CaseSpec:
    suite: str
    system: str
    user_task: str
    injection_task: str | None = None
    kind: str | None = None  # "cross_app" | "same_app" | "text_only" for a security case


def make_attack(suite, environments: Environments | None = None, apps: SuiteApps | None = None):
    """AgentDojo's important_instructions attack, addressed to "the AI language model" (its
    default name: the attack refuses a model name it does not know) and signed by the user.
    Where it injects is found as AgentDojo finds it (canaries through the ground truth), on an
    environment loaded once per suite, once per user task: ``sources(task)`` keeps, for each
    place, the apps whose results carry it (named only with ``apps``)."""
    from agentdojo.attacks.base_attacks import FixedJailbreakAttack
    from agentdojo.attacks.important_instructions_attacks import ImportantInstructionsAttack
    environments = environments or Environments(suite)

    class Attack(FixedJailbreakAttack):
        def sources(self, user_task) -> dict[str, set[str]]:
            if user_task.ID not in found:
                found[user_task.ID] = injection_sources(suite, user_task, apps, environments)
            return found[user_task.ID]

        def get_injection_candidates(self, user_task) -> list[str]:
            candidates = list(self.sources(user_task))
            if not candidates:
                raise ValueError(f"{user_task.ID} is not injectable.")  # as AgentDojo's own method
            return candidates
    found: dict[str, dict[str, set[str]]] = {}
    attack = Attack(ImportantInstructionsAttack._JB_STRING, suite, None)
    attack.user_name = ATTACK_USER
    return attack


def injection_sources(suite, user_task, apps: SuiteApps | None,
                      environments: Environments | None = None) -> dict[str, set[str]]:
    """For each injection vector the user task's ground truth reads (in the order of the suite's
    vectors): the apps whose tool results carry it (none named without ``apps``)."""
    from agentdojo.agent_pipeline.ground_truth_pipeline import GroundTruthPipeline
    from agentdojo.functions_runtime import FunctionsRuntime
    from agentdojo.types import get_text_content_as_str
    environments = environments or Environments(suite)
    canaries = {v: f"<CANARY---{v}--->" for v in environments.defaults}
    environment = environments.load(canaries)
    _, _, _, messages, _ = GroundTruthPipeline(user_task).query(user_task.PROMPT, FunctionsRuntime(suite.tools),
                                                                environment)
    texts = [(get_text_content_as_str(m["content"]), m["tool_call"].function) for m in messages
             if m["role"] == "tool" and m["content"] is not None]
    found: dict[str, set[str]] = {}
    for vector, canary in canaries.items():
        for text, function in texts:
            if canary in text:
                found.setdefault(vector, set()).update({apps.app_of(function)} if apps else set())
    return found


def kind_of(targets: set[str], carriers: set[str]) -> str:
    """What an attack asks of which app: another app than the one carrying it (cross_app), only
    that app's own functions (same_app), or no call at all, only words in the answer (text_only:
    travel injection_task_6, "say that I should visit Riverside View Hotel")."""
    if not targets:
        return "text_only"
    return "cross_app" if targets - carriers else "same_app"


def suite_cases(suite, apps: SuiteApps, *, systems=SYSTEMS, limit: int | None = None,
                user_tasks: list[str] | None = None, injection_tasks: list[str] | None = None) -> list[CaseSpec]:
    chosen = [t for t in suite.user_tasks.values() if user_tasks is None or t.ID in user_tasks][:limit]
    injections = [t for t in suite.injection_tasks.values() if injection_tasks is None or t.ID in injection_tasks]
    environments = Environments(suite)
    default_env = environments.load({})
    targets = {t.ID: {apps.app_of(c.function) for c in injection_calls(suite, t, default_env.model_copy(deep=True))}
               for t in injections}
    attack = make_attack(suite, environments, apps)
    pairs: list[tuple[str, str, str]] = []
    for task in chosen:
        sources = attack.sources(task)  # the same replay the attack uses to place its text
        if not sources:
            continue  # nothing the task reads can carry an injection
        for injection in injections:
            carriers = set().union(*(sources.get(v, set()) for v in attack.attack(task, injection)))
            pairs.append((task.ID, injection.ID, kind_of(targets[injection.ID], carriers)))
    out: list[CaseSpec] = []
    for system in systems:
        out += [CaseSpec(suite.name, system, t.ID) for t in chosen]
        out += [CaseSpec(suite.name, system, u, i, kind) for u, i, kind in pairs]
    return out


def all_cases(suites: list[str], *, version: str, systems=SYSTEMS, limit: int | None = None) -> list[CaseSpec]:
    from evaluation.agentdojo.runner import load_suite
    out: list[CaseSpec] = []
    for name in suites:
        suite = load_suite(name, version)
        out += suite_cases(suite, load_suite_apps(suite.name, suite.tools), systems=systems, limit=limit)
    return out


def shard(cases: list[CaseSpec], k: int, n: int) -> list[CaseSpec]:
    """Every n-th case starting at k: n machines split a run, their log directories merge by copying."""
    return cases[k::n]


def parse_shard(text: str) -> tuple[int, int]:
    """``K/N`` with 0 <= K < N; ValueError with the fix otherwise."""
    try:
        k, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard takes K/N (e.g. 0/4), not {text!r}") from None
    if not 0 <= k < n:
        raise ValueError(f"--shard K/N needs 0 <= K < N, not {text!r}")
    return k, n
