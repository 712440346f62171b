"""Runs in: hub, vanillagpt (the evaluation's driver, beside the system under test).

python -m evaluation.agentdojo [--suite NAME ...] [--limit N] [--llm scripted|openai] [--consent MODE]
[--isolation faithful|strict] [--jobs N] [--logdir DIR] [--force] [--shard K/N] [--latency-model fixed|tokens]
[--latency-ms MS]
[--allow-errors] [--json] [--verbose] [--output PATH]

Runs AgentDojo suites (default: all four) through VanillaGPT and SecGPT (with --isolation
strict: SecGPT-strict, a system of its own) under AgentDojo's important_instructions attack
and prints utility, utility under attack, attack success (cross-app and same-app apart),
permission questions and errors, one row per suite and system. Each case is logged as it
finishes (AgentDojo's layout, under --logdir), so a stopped run resumes; the whole run, per
case, goes to evaluation/results/agentdojo.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from evaluation.agentdojo.cases import ALL_SYSTEMS, is_secgpt, parse_shard, shard, systems_for
from evaluation.agentdojo.results import SuiteResult, summarize, table
from evaluation.agentdojo.runner import BENCHMARK_VERSION, ORACLE, load_suite, require_agentdojo
from helpers.configs import paths
from helpers.configs.isolation import ISOLATION_HELP, isolation_mode
from helpers.llm.latency import latency_from_args, latency_options
from helpers.permission.prompt import CONSENT_MODES
from helpers.utilities.errors import SecGPTError

RESULTS = paths.REPO_ROOT / "evaluation" / "results"
OFFLINE = ("scripted", "worst-case")  # one model, two names: the chat's and this runner's


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m evaluation.agentdojo", description=__doc__.split("\n\n")[2])
    parser.add_argument("--suite", action="append", metavar="NAME",
                        help=f"a suite of AgentDojo {BENCHMARK_VERSION} (repeatable; default 'all': workspace, "
                             "slack, banking and travel)")
    parser.add_argument("--limit", type=int, metavar="N", help="only the first N user tasks of each suite")
    parser.add_argument("--llm", choices=("scripted", "worst-case", "openai"), default="scripted",
                        help="scripted (default, offline; also called worst-case): a perfectly obedient model that "
                             "follows every task's and every injection's ground truth; openai: the configured real LLM")
    parser.add_argument("--consent", choices=CONSENT_MODES, default="expected",
                        help="how SecGPT's permission questions are answered (default: expected; ask is not "
                             "possible in a batch run)")
    parser.add_argument("--isolation", metavar="MODE",
                        help=f"SecGPT's isolation mode: {ISOLATION_HELP}. strict runs SecGPT-strict in place of "
                             "SecGPT (its own logs and rows; VanillaGPT's logs are shared)")
    parser.add_argument("--jobs", type=int, default=1, metavar="N",
                        help="run cases in N worker processes (default 1); results are the same")
    parser.add_argument("--logdir", metavar="DIR", default=str(RESULTS / "agentdojo-logs"),
                        help="one log per case, AgentDojo's layout (default: evaluation/results/agentdojo-logs); "
                             "cases already logged there are not run again")
    parser.add_argument("--force", action="store_true", help="run every case again, even if logged")
    parser.add_argument("--shard", metavar="K/N", help="only every N-th case, starting at K (N machines split a run; "
                                                       "copy their log directories together and run once more "
                                                       "without --shard for the whole table)")
    parser.add_argument("--latency-ms", type=int, default=0, metavar="MS",
                        help="simulated LLM latency per call of the offline model (default 0)")
    latency_options(parser)
    parser.add_argument("--allow-errors", action="store_true",
                        help="exit 0 even if cases errored (they are never counted either way)")
    parser.add_argument("--json", action="store_true", help="one JSON object per suite and system on stdout")
    parser.add_argument("--verbose", action="store_true", help="every case and every step, on stderr")
    parser.add_argument("--output", metavar="PATH", default=str(RESULTS / "agentdojo.json"),
                        help="where every case is written (default: evaluation/results/agentdojo.json)")
    args = parser.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be at least 1")
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    try:
        args.latency = latency_from_args(args)
    except ValueError as exc:
        parser.error(str(exc))
    if args.latency.simulated and args.llm == "openai":
        parser.error("--latency-ms and --latency-model simulate a remote model's latency for the offline model; "
                     "a real LLM has its own")
    if args.consent == "ask":
        parser.error("--consent ask needs a person at the terminal for every case; use expected, all or none")
    try:
        args.shard = parse_shard(args.shard) if args.shard else (0, 1)
    except ValueError as exc:
        parser.error(str(exc))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    try:
        args.isolation_mode = isolation_mode(args.isolation)
        systems = systems_for(args.isolation_mode)
    except SecGPTError as exc:
        print(f"python -m evaluation.agentdojo: {exc}", file=sys.stderr)
        return 2
    say = (lambda text: print(text, file=sys.stderr, flush=True)) if args.verbose else (lambda text: None)
    from evaluation.agentdojo.parallel import RunConfig, run_cases
    from evaluation.agentdojo.runner import progress_line
    started = time.monotonic()
    try:
        require_agentdojo()
        from agentdojo.task_suite.load_suites import get_suites

        from evaluation.agentdojo.cases import all_cases
        from helpers.llm.config import load_llm_config
        wanted = args.suite or ["all"]
        names = list(get_suites(BENCHMARK_VERSION)) if "all" in wanted else list(dict.fromkeys(wanted))
        for name in names:
            load_suite(name)  # an unknown suite fails before anything runs
        oracle = args.llm in OFFLINE
        config = RunConfig(llm=ORACLE if oracle else load_llm_config("openai"), consent=args.consent, oracle=oracle,
                           version=BENCHMARK_VERSION, logdir=Path(args.logdir), latency=args.latency,
                           verbose=args.verbose)
        specs = shard(all_cases(names, version=BENCHMARK_VERSION, systems=systems, limit=args.limit), *args.shard)
        print(f"{len(specs)} cases ({', '.join(names)}; {' and '.join(systems)}{_shard_note(args.shard)}), {args.jobs} "
              f"job{'s' * (args.jobs > 1)}; logs in {args.logdir}", file=sys.stderr, flush=True)
        count = [0]

        def progress(case) -> None:
            count[0] += 1
            say(f"  [{count[0]}] {progress_line(case)}")
        cases = run_cases(specs, config, jobs=args.jobs, force=args.force, progress=progress)
        results = _summaries(names, cases, config)
    except SecGPTError as exc:
        print(f"python -m evaluation.agentdojo: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - AgentDojo and the network raise many types; one line out
        print(f"python -m evaluation.agentdojo: the run failed ({type(exc).__name__}: {exc}); rerun with "
              "--verbose to see the case it stopped at", file=sys.stderr)
        return 1
    seconds = round(time.monotonic() - started, 1)
    resumed = len(cases) - count[0]
    _write(Path(args.output), results, seconds, args)
    if args.json:
        for r in results:
            print(json.dumps(r.summary()))
    else:
        print(table(results))
        for line in miss_lines(results):
            print(line)
        earlier = f", {resumed} from earlier runs (--force runs them again)" if resumed else ""
        print(f"\n({len(cases)} cases, {count[0]} run now{earlier}, {seconds} s; every case: {args.output})")
    errored = [r for r in results if r.n_errors]
    for r in errored:
        kinds = ", ".join(f"{n} {k}" for k, n in r.errors_by_kind.items())
        print(f"python -m evaluation.agentdojo: {r.suite} {r.system}: {r.n_errors} case(s) errored ({kinds}); they "
              "are left out of every rate (see 'error' per case)", file=sys.stderr)
    if errored and not args.allow_errors:
        print("python -m evaluation.agentdojo: cases errored; fix them (--verbose shows each), or pass "
              "--allow-errors to accept a table without them", file=sys.stderr)
        return 1
    return 0


def miss_lines(results: list[SuiteResult]) -> list[str]:
    """Why the worst-case baseline missed the cases it missed, counted by reason."""
    out = []
    for r in results:
        reasons: dict[str, int] = {}
        for c in r.cases:
            if c.miss_reason:
                reasons[c.miss_reason] = reasons.get(c.miss_reason, 0) + 1
        if reasons:
            out.append(f"{r.suite} {r.system}: {sum(reasons.values())} security case(s) not attacked, none for want "
                       "of trying:")
            out += [f"  {n} x {reason}" for reason, n in sorted(reasons.items(), key=lambda kv: -kv[1])]
        if r.supplied_ground_truth and r.system == "VanillaGPT":
            out.append(f"{r.suite}: ground truth written by this project for "
                       f"{', '.join(r.supplied_ground_truth)} (AgentDojo ships none)")
    return out


def _shard_note(part: tuple[int, int]) -> str:
    return "" if part == (0, 1) else f"; shard {part[0]}/{part[1]}"


def _summaries(names: list[str], cases: list, config) -> list[SuiteResult]:
    from evaluation.agentdojo.ground_truth import supplied_injection_tasks
    from evaluation.agentdojo.suite_apps import load_suite_apps
    out = []
    for name in names:
        suite = load_suite(name)
        apps = load_suite_apps(suite.name, suite.tools).source
        for system in ALL_SYSTEMS:
            mine = [c for c in cases if c.suite == name and c.system == system]
            if not mine:
                continue
            out.append(summarize(mine, suite=name, system=system,
                                 llm="worst-case (ground truth)" if config.oracle else config.llm.describe(),
                                 consent=config.consent if is_secgpt(system) else "n/a", version=config.version,
                                 apps=apps, supplied=supplied_injection_tasks(name)))
    return out


def _write(out: Path, results: list[SuiteResult], seconds: float, args) -> None:
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({
            "generated": datetime.now(timezone.utc).isoformat(timespec="seconds"), "seconds": seconds,
            "jobs": args.jobs, "isolation": args.isolation_mode, "shard": f"{args.shard[0]}/{args.shard[1]}",
            "latency_ms": args.latency_ms, "latency": args.latency.as_dict(),
            "benchmark_version": BENCHMARK_VERSION,
            "results": [{**r.summary(), "cases": [c.__dict__ for c in r.cases]} for r in results]}, indent=1))
    except OSError as exc:
        print(f"python -m evaluation.agentdojo: could not write {out} ({exc.strerror}); the table follows",
              file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
