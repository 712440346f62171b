"""python -m evaluation.agentdojo [--suite NAME ...] [--limit N] [--llm worst-case|openai]
[--consent MODE] [--json] [--verbose] [--output PATH]

Runs AgentDojo suites (default: workspace and slack) through VanillaGPT and SecGPT
under AgentDojo's important_instructions attack and prints utility, utility under
attack and attack success (cross-app and same-app apart), one row per suite and
system. Everything, per case, is written to evaluation/results/agentdojo.json (--output).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from evaluation.agentdojo.runner import (
    BENCHMARK_VERSION, ORACLE, SecGPTSystem, SuiteResult, VanillaGPTSystem, load_suite, require_agentdojo, run_suite,
)
from helpers.configs import paths
from helpers.permission.prompt import CONSENT_MODES
from helpers.utilities.errors import SecGPTError

DEFAULT_SUITES = ("workspace", "slack")
RESULTS = paths.REPO_ROOT / "evaluation" / "results"


def table(results: list[SuiteResult]) -> str:
    def pct(x: float | None) -> str:
        return "-" if x is None else f"{100 * x:.0f}%"
    rows = [("suite", "system", "utility", "utility under attack", "ASR", "ASR cross-app", "ASR same-app",
             "user tasks", "security cases")]
    for r in results:
        rows.append((r.suite, r.system + (f" ({r.consent})" if r.system == "SecGPT" else ""), pct(r.utility),
                     pct(r.utility_under_attack), pct(r.asr), f"{pct(r.asr_cross_app)} of {r.n_cross_app}",
                     f"{pct(r.asr_same_app)} of {r.n_same_app}", str(r.n_user_tasks), str(r.n_security_cases)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evaluation.agentdojo", description=__doc__.split("\n\n")[1])
    parser.add_argument("--suite", action="append", metavar="NAME",
                        help=f"a suite of AgentDojo {BENCHMARK_VERSION} (repeatable; 'all' for every suite; "
                             f"default: {' and '.join(DEFAULT_SUITES)})")
    parser.add_argument("--limit", type=int, metavar="N", help="only the first N user tasks of each suite")
    parser.add_argument("--llm", choices=("worst-case", "openai"), default="worst-case",
                        help="worst-case (default, offline): follows every task's and every injection's ground "
                             "truth; openai: the configured real LLM")
    parser.add_argument("--consent", choices=CONSENT_MODES, default="expected",
                        help="how SecGPT's permission questions are answered (default: expected; ask is not "
                             "possible in a batch run)")
    parser.add_argument("--json", action="store_true", help="one JSON object per suite and system on stdout")
    parser.add_argument("--verbose", action="store_true", help="every case and every step, on stderr")
    parser.add_argument("--output", metavar="PATH", default=str(RESULTS / "agentdojo.json"),
                        help="where every case is written (default: evaluation/results/agentdojo.json)")
    args = parser.parse_args(argv)
    say = (lambda text: print(text, file=sys.stderr, flush=True)) if args.verbose else (lambda text: None)
    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be at least 1")
    if args.consent == "ask":
        parser.error("--consent ask needs a person at the terminal for every case; use expected, all or none")
    try:
        require_agentdojo()
        from agentdojo.task_suite.load_suites import get_suites
        names = list(get_suites(BENCHMARK_VERSION)) if args.suite == ["all"] else args.suite or list(DEFAULT_SUITES)
        for name in names:
            load_suite(name)  # an unknown suite fails before anything runs
        from helpers.llm.config import load_llm_config
        llm = ORACLE if args.llm == "worst-case" else load_llm_config("openai")
        emit = (lambda kind, text: say(f"    [{kind}] {text}")) if args.verbose else None
        from helpers.sandbox.launcher import SpokeLauncher
        results: list[SuiteResult] = []
        started = time.monotonic()
        with SpokeLauncher() as launcher:
            for name in names:
                for system in (VanillaGPTSystem(llm, emit=emit),
                               SecGPTSystem(llm, args.consent, launcher, emit=emit)):
                    print(f"{name}: {system.name} ...", file=sys.stderr, flush=True)
                    results.append(run_suite(name, system, oracle=args.llm == "worst-case", limit=args.limit,
                                             say=say))
    except SecGPTError as exc:
        print(f"python -m evaluation.agentdojo: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - AgentDojo and the network raise many types; one line out
        print(f"python -m evaluation.agentdojo: the run failed ({type(exc).__name__}: {exc}); rerun with "
              "--verbose to see the case it stopped at", file=sys.stderr)
        return 1
    out = Path(args.output)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({
            "generated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "seconds": round(time.monotonic() - started, 1), "benchmark_version": BENCHMARK_VERSION,
            "results": [{**r.summary(), "cases": [c.__dict__ for c in r.cases]} for r in results]}, indent=1))
    except OSError as exc:
        print(f"python -m evaluation.agentdojo: could not write {out} ({exc.strerror}); the table follows",
              file=sys.stderr)
    if args.json:
        for r in results:
            print(json.dumps(r.summary()))
    else:
        print(table(results))
        for r in results[::2]:
            if r.injection_tasks_without_ground_truth:
                print(f"{r.suite}: not counted, AgentDojo gives no ground truth to follow for "
                      f"{', '.join(r.injection_tasks_without_ground_truth)}")
        print(f"\n(every case: {out})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
