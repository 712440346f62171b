"""Runs in: hub, vanillagpt (the evaluation's driver, beside the system under test).

Running many cases: in this process or in N worker processes, each case logged as it
finishes, finished cases skipped on the next run.

A worker is a process of its own with its own spoke launcher (zygote); each case in it
has its own data directory, hub and Redis, as in a serial run, so ``--jobs N`` gives the
same results as ``--jobs 1``. Workers come from a fork server that imported the heavy
libraries once. A worker that dies takes its case with it: the case is recorded as an
``internal`` error (never as a result) and the run goes on with the others.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.util
import sys
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

from evaluation.agentdojo.cases import STRICT, CaseSpec
from evaluation.agentdojo.logs import case_path, pipeline_name, read_case, write_case
from evaluation.agentdojo.results import Case
from helpers.llm.config import LLMConfig
from helpers.llm.latency import NO_LATENCY, LatencyModel

MAX_DEATHS = 2  # runs of a case whose worker died, before it is recorded as an error
PRELOAD = ["evaluation.agentdojo.pipeline", "hub.hub", "vanillagpt.vanillagpt"]


@dataclass(frozen=True)
class RunConfig:
    """Everything a worker needs to build the systems and run a case (sent to each worker)."""
    llm: LLMConfig
    consent: str
    oracle: bool
    version: str
    logdir: Path
    latency: LatencyModel = NO_LATENCY
    verbose: bool = False

    def pipeline(self, system: str) -> str:
        return pipeline_name(system, "worst-case" if self.oracle else self.llm.model, self.consent)

    def log(self, spec: CaseSpec) -> Path:
        return case_path(self.logdir, self.pipeline(spec.system), spec.suite, spec.user_task, spec.injection_task)


class Worker:
    """The systems and the case runner of one process (the main one, or a worker)."""

    def __init__(self, config: RunConfig) -> None:
        from evaluation.agentdojo.runner import CaseRunner, VanillaGPTSystem
        self.config = config
        self.emit = (lambda kind, text: print(f"    [{kind}] {text}", file=sys.stderr, flush=True)) \
            if config.verbose else None
        self.launcher = None  # started with the first SecGPT case: a worker of VanillaGPT cases needs none
        self.runner = CaseRunner({"VanillaGPT": VanillaGPTSystem(config.llm, emit=self.emit)}, oracle=config.oracle,
                                 version=config.version, latency=config.latency)

    def _secgpt(self, name: str) -> None:
        from evaluation.agentdojo.runner import SecGPTStrictSystem, SecGPTSystem
        from helpers.sandbox.launcher import SpokeLauncher
        if self.launcher is None:
            self.launcher = SpokeLauncher().start()
        kind = {"SecGPT": SecGPTSystem, STRICT: SecGPTStrictSystem}[name]
        self.runner.systems[name] = kind(self.config.llm, self.config.consent, self.launcher, emit=self.emit)

    def run(self, spec: CaseSpec) -> Case:
        if spec.system not in self.runner.systems:
            self._secgpt(spec.system)
        run = self.runner.run(spec)
        case = run.case
        write_case(self.config.log(spec), case, pipeline=self.config.pipeline(spec.system),
                   injections=run.injections, messages=run.messages, security=run.security, utility=run.utility)
        return case

    def close(self) -> None:
        self.runner.close()
        if self.launcher is not None:
            self.launcher.close()


_worker: Worker | None = None


def _start_worker(config: RunConfig) -> None:
    global _worker
    _worker = Worker(config)
    multiprocessing.util.Finalize(_worker, _worker.close, exitpriority=10)  # runs as the worker exits


def _run_in_worker(spec: CaseSpec) -> dict:
    return _worker.run(spec).__dict__


def pending(specs: list[CaseSpec], config: RunConfig, force: bool) -> tuple[list[CaseSpec], dict[CaseSpec, Case]]:
    """The cases still to run, and those a previous run finished (read back from their logs;
    a case that errored is run again)."""
    done: dict[CaseSpec, Case] = {}
    if not force:
        for spec in specs:
            case = read_case(config.log(spec))
            if case is not None and case.kind == spec.kind and case.error is None:
                done[spec] = case  # an errored case is not finished: it runs again
    return [s for s in specs if s not in done], done


def run_cases(specs: list[CaseSpec], config: RunConfig, *, jobs: int = 1, force: bool = False,
              progress: Callable[[Case], None] = lambda case: None) -> list[Case]:
    """Every case of ``specs``, in their order: those already logged are read back, the others run."""
    todo, done = pending(specs, config, force)
    if todo and jobs <= 1:
        worker = Worker(config)
        try:
            for spec in todo:
                done[spec] = worker.run(spec)
                progress(done[spec])
        finally:
            worker.close()
    elif todo:
        done.update(_in_workers(todo, config, jobs, progress))
    return [done[s] for s in specs]


def _in_workers(todo: list[CaseSpec], config: RunConfig, jobs: int,
                progress: Callable[[Case], None]) -> dict[CaseSpec, Case]:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    out: dict[CaseSpec, Case] = {}
    deaths: Counter[CaseSpec] = Counter()
    queue = list(todo)
    while queue:
        with ProcessPoolExecutor(max_workers=min(jobs, len(queue)), mp_context=context, initializer=_start_worker,
                                 initargs=(config,)) as pool:
            futures = {pool.submit(_run_in_worker, spec): spec for spec in queue}
            queue = []
            for future in as_completed(futures):
                spec = futures[future]
                try:
                    case = Case.from_dict(future.result())
                except BrokenProcessPool:
                    # A worker died; the pool fails every case not finished. Each is run again in a
                    # new pool, up to MAX_DEATHS times: then it is an error, not a result.
                    deaths[spec] += 1
                    if deaths[spec] < MAX_DEATHS:
                        queue.append(spec)
                        continue
                    case = _failed(spec, f"its worker process died {deaths[spec]} times")
                except Exception as exc:  # noqa: BLE001 - the worker raised outside the case (e.g. its log)
                    case = _failed(spec, f"{type(exc).__name__}: {exc}")
                out[spec] = case
                progress(case)
    return out


def _failed(spec: CaseSpec, message: str) -> Case:
    return Case(spec.suite, spec.system, spec.user_task, spec.injection_task, None, kind=spec.kind,
                error={"kind": "internal", "message": message})
