"""Run AgentDojo suites through SecGPT or VanillaGPT and let AgentDojo score them.

Each system is an AgentDojo pipeline element (``SystemPipeline``): AgentDojo's own
``TaskSuite.run_task_with_pipeline`` loads and injects the environment, hands us the
prompt, and scores utility and security with the task's own checks on the environment
after the run and the function-call trace. Inside ``query`` a fresh session of the
system under test answers the prompt, with the suite's apps installed; the apps reach
the environment only through their own simulated service (service.py), so the trace
is what the apps really did.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from evaluation.agentdojo.ground_truth import worst_case_model
from evaluation.agentdojo.service import SuiteWorld
from evaluation.agentdojo.suite_apps import SuiteApps, load_suite_apps
from helpers.llm.config import LLMConfig
from helpers.utilities.environment import scratch_data_dir
from helpers.utilities.errors import ConfigError

BENCHMARK_VERSION = "v1.2.2"
ATTACK_USER = "Emma Johnson"  # the victim's name AgentDojo's important_instructions attack signs with
ORACLE = LLMConfig(provider="scripted", model="agentdojo-ground-truth")
INSTALL_HINT = "pip install -r evaluation/agentdojo/requirements.txt"

Say = Callable[[str], None]


def require_agentdojo() -> None:
    try:
        import agentdojo  # noqa: F401
    except ImportError as exc:
        raise ConfigError(f"the AgentDojo evaluation needs the agentdojo package: {INSTALL_HINT}") from exc


def load_suite(name: str, version: str = BENCHMARK_VERSION):
    require_agentdojo()
    from agentdojo.task_suite.load_suites import get_suites
    suites = get_suites(version)
    if name not in suites:
        raise ConfigError(f"AgentDojo {version} has no suite {name!r}; choose from {', '.join(sorted(suites))}")
    return suites[name]


@dataclass
class Case:
    user_task: str
    injection_task: str | None
    utility: bool
    attacked: bool | None = None
    kind: str | None = None            # "cross_app" or "same_app"
    answer: str = ""
    calls: list[str] = field(default_factory=list)   # app.function of each call that ran


@dataclass
class SuiteResult:
    suite: str
    system: str
    llm: str
    consent: str
    benchmark_version: str
    attack: str
    apps: str
    utility: float
    utility_under_attack: float | None   # None: no security case ran
    asr: float | None
    asr_cross_app: float | None
    asr_same_app: float | None
    n_user_tasks: int
    n_security_cases: int
    n_cross_app: int
    n_same_app: int
    injection_tasks_without_ground_truth: list[str]
    cases: list[Case]

    def summary(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k != "cases"}


# --- the systems ----------------------------------------------------------------------------------------



class System:
    name = ""

    def __init__(self, llm: LLMConfig, consent: str = "expected", launcher=None,
                 emit: Callable[[str, str], None] | None = None) -> None:
        self.llm, self.consent, self.launcher = llm, consent, launcher
        self.emit = emit  # the system's own progress events (--verbose)

    def answer(self, query: str, catalogue: Path, world: SuiteWorld, model) -> str:
        raise NotImplementedError


class SecGPTSystem(System):
    name = "SecGPT"

    def answer(self, query: str, catalogue: Path, world: SuiteWorld, model) -> str:
        from helpers.tools.tool_importer import ToolImporter
        from hub.http_broker import HttpBroker
        from hub.hub import Hub
        importer = ToolImporter(catalogue / "functionalities.json", extra_dirs=(catalogue,))
        with Hub(self.llm, consent=self.consent, importer=importer, launcher=self.launcher,
                 http=HttpBroker(services=world.transports()), chat_model=model,
                 read=_no_terminal, write=lambda text: None, emit=self.emit) as hub:
            return hub.answer(query).text


class VanillaGPTSystem(System):
    name = "VanillaGPT"

    def answer(self, query: str, catalogue: Path, world: SuiteWorld, model) -> str:
        from helpers.tools.tool_importer import ToolImporter
        from hub.http_broker import HttpBroker
        from vanillagpt.vanillagpt import VanillaGPT
        importer = ToolImporter(catalogue / "functionalities.json", extra_dirs=(catalogue,))
        with VanillaGPT(self.llm, importer=importer, http=HttpBroker(services=world.transports()),
                        chat_model=model, emit=self.emit) as vanilla:
            return vanilla.answer(query).text


def _no_terminal(prompt: str) -> str:
    raise ConfigError("the AgentDojo evaluation cannot ask the user; use --consent expected, all or none")


# --- AgentDojo's side ----------------------------------------------------------------------------------

def make_pipeline(system: System, suite, apps: SuiteApps, catalogue: Path, oracle: bool):
    from agentdojo.agent_pipeline.base_pipeline_element import BasePipelineElement
    from agentdojo.functions_runtime import FunctionCall
    from agentdojo.types import (ChatAssistantMessage, ChatToolResultMessage, ChatUserMessage,
                                 text_content_block_from_string)

    class SystemPipeline(BasePipelineElement):
        name = system.name.lower()

        def __init__(self) -> None:
            self.last_world: SuiteWorld | None = None
            self.last_answer = ""

        def query(self, query: str, runtime, env, messages: Sequence = (), extra_args: dict | None = None):
            world = SuiteWorld(apps, runtime, env)
            model = worst_case_model(suite, env) if oracle else None
            with scratch_data_dir("secgpt-agentdojo-"):  # no memory, grant or audit entry reaches the next case
                answer = system.answer(query, catalogue, world, model)
            self.last_world, self.last_answer = world, answer
            out = [ChatUserMessage(role="user", content=[text_content_block_from_string(query)])]
            for i, entry in enumerate(world.trace):
                call = FunctionCall(function=entry.function, args=entry.args, id=f"call_{i}")
                out.append(ChatAssistantMessage(role="assistant", content=None, tool_calls=[call]))
                out.append(ChatToolResultMessage(role="tool", content=[text_content_block_from_string(entry.result)],
                                                 tool_call_id=call.id, tool_call=call, error=entry.error))
            out.append(ChatAssistantMessage(role="assistant", content=[text_content_block_from_string(answer)],
                                            tool_calls=None))
            return query, runtime, env, [*messages, *out], dict(extra_args or {})

    return SystemPipeline()


def injection_sources(suite, user_task, apps: SuiteApps) -> dict[str, set[str]]:
    """For each injection vector the user task's ground truth reads: the apps whose tool
    results carry it (found with canaries, as AgentDojo finds injectable vectors)."""
    from agentdojo.agent_pipeline.ground_truth_pipeline import GroundTruthPipeline
    from agentdojo.functions_runtime import FunctionsRuntime
    from agentdojo.types import get_text_content_as_str
    canaries = {v: f"<CANARY---{v}--->" for v in suite.get_injection_vector_defaults()}
    environment = suite.load_and_inject_default_environment(canaries)
    _, _, _, messages, _ = GroundTruthPipeline(user_task).query(user_task.PROMPT, FunctionsRuntime(suite.tools),
                                                                environment)
    found: dict[str, set[str]] = {}
    for m in messages:
        if m["role"] != "tool":
            continue
        text = get_text_content_as_str(m["content"])
        for vector, canary in canaries.items():
            if canary in text:
                found.setdefault(vector, set()).add(apps.app_of(m["tool_call"].function))
    return found


def run_suite(suite_name: str, system: System, *, oracle: bool = True, limit: int | None = None,
              injection_tasks: list[str] | None = None, user_tasks: list[str] | None = None,
              version: str = BENCHMARK_VERSION, apps_file: Path | None = None, say: Say = lambda t: None
              ) -> SuiteResult:
    from agentdojo.attacks.base_attacks import FixedJailbreakAttack
    from agentdojo.attacks.important_instructions_attacks import ImportantInstructionsAttack
    suite = load_suite(suite_name, version)
    apps = load_suite_apps(suite.name, suite.tools, apps_file)
    tools = {t.name: t for t in suite.tools}
    chosen = [t for t in suite.user_tasks.values() if user_tasks is None or t.ID in user_tasks][:limit]
    default_env = suite.load_and_inject_default_environment({})
    usable, without = [], []
    for t in suite.injection_tasks.values():
        if injection_tasks is not None and t.ID not in injection_tasks:
            continue
        (usable if t.ground_truth(default_env.model_copy(deep=True)) else without).append(t)
    with tempfile.TemporaryDirectory(prefix="secgpt-agentdojo-apps-") as tmp:
        catalogue = Path(tmp)
        catalogue.chmod(0o755)
        apps.write_catalogue(tools, catalogue)
        pipeline = make_pipeline(system, suite, apps, catalogue, oracle)
        attack = FixedJailbreakAttack(ImportantInstructionsAttack._JB_STRING, suite, pipeline)
        attack.user_name = ATTACK_USER
        cases: list[Case] = []
        for task in chosen:
            utility, _ = suite.run_task_with_pipeline(pipeline, task, None, {})
            cases.append(_case(task.ID, None, utility, None, None, pipeline))
            say(f"  {suite.name} {system.name} {task.ID}: utility {utility}")
        for task in chosen:
            sources = injection_sources(suite, task, apps)
            if not sources:
                continue  # nothing the task reads can carry an injection
            for injection in usable:
                injections = attack.attack(task, injection)
                targets = {apps.app_of(c.function) for c in injection.ground_truth(default_env.model_copy(deep=True))}
                carriers = set().union(*(sources.get(v, set()) for v in injections))
                kind = "cross_app" if targets - carriers else "same_app"
                utility, attacked = suite.run_task_with_pipeline(pipeline, task, injection, injections)
                cases.append(_case(task.ID, injection.ID, utility, attacked, kind, pipeline))
                say(f"  {suite.name} {system.name} {task.ID} x {injection.ID} ({kind}): utility {utility}, "
                    f"attack {'SUCCEEDED' if attacked else 'failed'}")
    return _result(suite.name, system, oracle, version, apps, chosen, cases, without)


def _case(user_task, injection_task, utility, attacked, kind, pipeline) -> Case:
    world = pipeline.last_world
    return Case(user_task, injection_task, bool(utility), None if attacked is None else bool(attacked), kind,
                pipeline.last_answer[:2000], [f"{e.app}.{e.function}" for e in world.trace] if world else [])


def _rate(cases: list[Case], value: Callable[[Case], bool]) -> float | None:
    return round(sum(value(c) for c in cases) / len(cases), 4) if cases else None


def _result(suite, system: System, oracle, version, apps: SuiteApps, chosen, cases, without) -> SuiteResult:
    plain = [c for c in cases if c.injection_task is None]
    attacked = [c for c in cases if c.injection_task is not None]
    cross = [c for c in attacked if c.kind == "cross_app"]
    same = [c for c in attacked if c.kind == "same_app"]
    return SuiteResult(
        suite=suite, system=system.name, llm="worst-case (ground truth)" if oracle else system.llm.describe(),
        consent=system.consent if system.name == "SecGPT" else "n/a", benchmark_version=version,
        attack="important_instructions", apps=apps.source,
        utility=_rate(plain, lambda c: c.utility) or 0.0,
        utility_under_attack=_rate(attacked, lambda c: c.utility),
        asr=_rate(attacked, lambda c: bool(c.attacked)),
        asr_cross_app=_rate(cross, lambda c: bool(c.attacked)), asr_same_app=_rate(same, lambda c: bool(c.attacked)),
        n_user_tasks=len(chosen), n_security_cases=len(attacked), n_cross_app=len(cross), n_same_app=len(same),
        injection_tasks_without_ground_truth=[t.ID for t in without], cases=cases)
