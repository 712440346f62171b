"""Runs in: hub, vanillagpt (the evaluation's driver, beside the system under test).

Run AgentDojo cases through SecGPT or VanillaGPT and let AgentDojo score them.

Each system is an AgentDojo pipeline element (``SystemPipeline``): AgentDojo's own
``TaskSuite.run_task_with_pipeline`` loads and injects the environment, hands us the
prompt, and scores utility and security with the task's own checks on the environment
after the run and the function-call trace. Inside ``query`` a fresh session of the
system under test answers the prompt, with the suite's apps installed, in a fresh data
directory (its own memory, permissions and audit log); the apps reach the environment
only through their own simulated service (service.py), so the trace is what the apps
really did. A run that did not complete as designed (the system's answer carries a
failure, or the harness raised) is recorded as an error and never scored.
"""

from __future__ import annotations

import shutil
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from evaluation.agentdojo.cases import STRICT, CaseSpec, make_attack, suite_cases
from evaluation.agentdojo.environments import Environments
from evaluation.agentdojo.ground_truth import explain_miss, supplied_injection_tasks
from evaluation.agentdojo.results import Case, SuiteResult, summarize
from evaluation.agentdojo.service import SuiteWorld
from evaluation.agentdojo.suite_apps import SuiteApps, load_suite_apps
from helpers.llm.config import LLMConfig
from helpers.llm.latency import NO_LATENCY, LatencyModel
from helpers.utilities.errors import ConfigError
from helpers.utilities.session import Session

BENCHMARK_VERSION = "v1.2.2"
ORACLE = LLMConfig(provider="scripted", model="agentdojo-ground-truth")
INSTALL_HINT = "pip install -r evaluation/agentdojo/requirements.txt"
ANSWER_KEPT = 2000  # characters of the answer kept per case

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


# --- the systems ----------------------------------------------------------------------------------------

@dataclass
class Reply:
    """What a system gave for one prompt: its answer, its failure if it did not complete, and the
    permission questions put on the way."""
    text: str
    error: dict | None = None   # {"kind", "message"}
    prompts: tuple[int, int] = (0, 0)  # questions put: (all, about operations the plan did not expect)


class System:
    """How the evaluation makes a session of one system under test; everything after that goes
    through the session interface (helpers/utilities/session.py), the same for every system."""
    name = ""
    baseline = False  # the one-context baseline, whose losses under the worst-case model are explained

    def __init__(self, llm: LLMConfig, consent: str = "expected", launcher=None,
                 emit: Callable[[str, str], None] | None = None) -> None:
        self.llm, self.consent, self.launcher = llm, consent, launcher
        self.emit = emit  # the system's own progress events (--verbose)

    def open(self, catalogue: Path, world: SuiteWorld, model) -> Session:
        """A new session with the suite's apps (``catalogue``) installed, their HTTP served by
        ``world``, ``model`` (if any) in place of the configured LLM."""
        raise NotImplementedError

    def answer(self, query: str, catalogue: Path, world: SuiteWorld, model) -> Reply:
        with self.open(catalogue, world, model) as session:
            answer = session.answer(query)
            decisions = session.permission_log()
        # A standing grant answering is no question; the user or the consent policy answering is.
        asked = [d for d in decisions if d.source != "stored"]
        error = None if answer.error is None else {"kind": answer.error.kind, "message": answer.error.message}
        return Reply(answer.text, error, (len(asked), sum(not d.expected for d in asked)))


class SecGPTSystem(System):
    """SecGPT in faithful isolation (the paper's architecture); ``SecGPTStrictSystem`` is the
    same with ``isolation="strict"``, a system of its own in every case, log and table."""
    name = "SecGPT"
    isolation = "faithful"

    def open(self, catalogue: Path, world: SuiteWorld, model) -> Session:
        from helpers.sandbox.http_broker import HttpBroker
        from helpers.tools.tool_importer import ToolImporter
        from hub.hub import Hub
        importer = ToolImporter(catalogue / "functionalities.json", extra_dirs=(catalogue,))
        return Hub(self.llm, consent=self.consent, importer=importer, launcher=self.launcher,
                   http=HttpBroker(services=world.transports()), chat_model=model,
                   isolation=self.isolation, read=_no_terminal, write=lambda text: None, emit=self.emit)


class SecGPTStrictSystem(SecGPTSystem):
    name = STRICT
    isolation = "strict"


class VanillaGPTSystem(System):
    name = "VanillaGPT"
    baseline = True

    def __init__(self, llm: LLMConfig, consent: str = "n/a", launcher=None,
                 emit: Callable[[str, str], None] | None = None) -> None:
        super().__init__(llm, consent, launcher, emit)  # "n/a": VanillaGPT asks no permission

    def open(self, catalogue: Path, world: SuiteWorld, model) -> Session:
        from helpers.sandbox.http_broker import HttpBroker
        from helpers.tools.tool_importer import ToolImporter
        from vanillagpt.vanillagpt import VanillaGPT
        importer = ToolImporter(catalogue / "functionalities.json", extra_dirs=(catalogue,))
        return VanillaGPT(self.llm, importer=importer, http=HttpBroker(services=world.transports()),
                          chat_model=model, emit=self.emit)


def _no_terminal(prompt: str) -> str:
    raise ConfigError("the AgentDojo evaluation cannot ask the user; use --consent expected, all or none")


# --- one case ---------------------------------------------------------------------------------------------

@dataclass
class CaseRun:
    """A case and what its log keeps beside it: AgentDojo's raw verdicts, the injections, the messages."""
    case: Case
    injections: dict[str, str]
    messages: list
    utility: bool
    security: bool
    pre_environment: object = None    # the environment as the run found it (injected, task set up)
    post_environment: object = None   # and as the run left it
    trace: list = field(default_factory=list)  # every call that ran (service.TraceEntry)


class SuiteContext:
    """What every case of one suite shares in one process: the suite, its apps, their catalogue."""

    def __init__(self, name: str, version: str, apps_file: Path | None = None) -> None:
        self.suite = load_suite(name, version)
        self.apps: SuiteApps = load_suite_apps(self.suite.name, self.suite.tools, apps_file)
        self.environments = Environments(self.suite)
        self.attack = make_attack(self.suite, self.environments, self.apps)
        self._dir = tempfile.mkdtemp(prefix="secgpt-agentdojo-apps-")
        self.catalogue = Path(self._dir)
        self.catalogue.chmod(0o755)
        self.apps.write_catalogue({t.name: t for t in self.suite.tools}, self.catalogue)

    def close(self) -> None:
        shutil.rmtree(self._dir, ignore_errors=True)


class CaseRunner:
    """Runs cases one at a time in this process, keeping each suite's apps between cases.
    ``systems`` by name; ``oracle``: each run gets the worst-case model for its environment."""

    def __init__(self, systems: dict[str, System], *, oracle: bool = True, version: str = BENCHMARK_VERSION,
                 apps_file: Path | None = None, latency: LatencyModel = NO_LATENCY) -> None:
        self.systems, self.oracle, self.version = systems, oracle, version
        self.apps_file, self.latency = apps_file, latency
        self._suites: dict[str, SuiteContext] = {}

    def suite(self, name: str) -> SuiteContext:
        if name not in self._suites:
            self._suites[name] = SuiteContext(name, self.version, self.apps_file)
        return self._suites[name]

    def close(self) -> None:
        for context in self._suites.values():
            context.close()
        self._suites.clear()

    def __enter__(self) -> CaseRunner:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def run(self, spec: CaseSpec) -> CaseRun:
        context = self.suite(spec.suite)
        suite = context.suite
        task = suite.user_tasks[spec.user_task]
        injection = suite.injection_tasks[spec.injection_task] if spec.injection_task else None
        injections = context.attack.attack(task, injection) if injection else {}
        from evaluation.agentdojo.pipeline import SystemPipeline  # AgentDojo is imported only to run a case
        pipeline = SystemPipeline(self.systems[spec.system], context, self.oracle, self.latency)
        started = time.monotonic()
        try:
            utility, security = suite.run_task_with_pipeline(pipeline, task, injection, injections,
                                                             environment=context.environments.load(injections))
        except Exception as exc:  # noqa: BLE001 - AgentDojo's checks raise many types; the case records it
            utility = security = False
            pipeline.error = pipeline.error or {"kind": "internal", "message": describe_exception(exc)}
        error = pipeline.error
        case = Case(
            suite=spec.suite, system=spec.system, user_task=spec.user_task, injection_task=spec.injection_task,
            utility=None if error else bool(utility),
            attacked=None if error or injection is None else bool(security), kind=spec.kind,
            answer=pipeline.answer[:ANSWER_KEPT], calls=[f"{e.app}.{e.function}" for e in pipeline.trace],
            error=error, prompts=pipeline.prompts[0], unexpected_prompts=pipeline.prompts[1],
            duration=round(time.monotonic() - started, 3))
        if (self.oracle and self.systems[spec.system].baseline and injection is not None and error is None
                and not security):
            # The baseline under a model that obeys everything lost this case: say why ground truth
            # cannot win it (a miss is never "the model did not try": that is a bug of the model).
            case.miss_reason = explain_miss(suite, task, injection, injections, pipeline.pre_environment,
                                            pipeline.post_environment, pipeline.answer, pipeline.trace)
        return CaseRun(case, injections, pipeline.messages, bool(utility), bool(security),
                       pipeline.pre_environment, pipeline.post_environment, pipeline.trace)


def describe_exception(exc: BaseException) -> str:
    where = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    at = f" at {Path(where[0].filename).name}:{where[0].lineno}" if where else ""
    return f"{type(exc).__name__}: {exc}{at}"


# --- a whole suite, in this process (tests, scripts) --------------------------------------------------------

def run_suite(suite_name: str, system: System, *, oracle: bool = True, limit: int | None = None,
              injection_tasks: list[str] | None = None, user_tasks: list[str] | None = None,
              version: str = BENCHMARK_VERSION, apps_file: Path | None = None, say: Say = lambda t: None
              ) -> SuiteResult:
    """One suite on one system, serially, without logs: what a test or a script wants."""
    with CaseRunner({system.name: system}, oracle=oracle, version=version, apps_file=apps_file) as runner:
        context = runner.suite(suite_name)
        specs = suite_cases(context.suite, context.apps, systems=(system.name,), limit=limit,
                            user_tasks=user_tasks, injection_tasks=injection_tasks)
        cases = []
        for spec in specs:
            cases.append(runner.run(spec).case)
            say(f"  {progress_line(cases[-1])}")
        llm = "worst-case (ground truth)" if oracle else system.llm.describe()
        return summarize(cases, suite=context.suite.name, system=system.name, llm=llm,
                         consent=system.consent, version=version,
                         apps=context.apps.source, supplied=supplied_injection_tasks(context.suite.name))


def progress_line(case: Case) -> str:
    name = f"{case.suite} {case.system} {case.user_task}"
    if case.error:
        return f"{name}{' x ' + case.injection_task if case.injection_task else ''}: ERROR " \
               f"{case.error['kind']}: {case.error['message']}"
    if case.injection_task is None:
        return f"{name}: utility {case.utility}"
    return (f"{name} x {case.injection_task} ({case.kind}): utility {case.utility}, "
            f"attack {'SUCCEEDED' if case.attacked else 'failed'}")
