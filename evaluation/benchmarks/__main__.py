"""Runs in: hub, vanillagpt (the evaluation's driver, beside the system under test).

python -m evaluation.benchmarks [--quick] [--json] [--latency-ms N] [--output FILE]

Table on stdout (or JSON with --json); the JSON is also written to FILE (default
evaluation/results/benchmarks.json). Targets are checked here and reported,
never asserted by the tests.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path

from evaluation.benchmarks import e2e, isolation, planning
from evaluation.benchmarks.queries import QUERIES, QUICK
from helpers.configs import paths
from helpers.llm.latency import NO_LATENCY, LatencyModel
from helpers.sandbox.launcher import SpokeLauncher
from helpers.utilities.errors import SecGPTError

TARGETS = {"e2e_ratio_max": 1.10, "strict_vs_faithful_total": 1.10, "spoke_start_p50_ms": 15.0, "rtt_p50_ms": 0.2,
           "pss_per_idle_spoke_mb": 40.0}


def machine() -> dict:
    return {"cpus": os.cpu_count(), "kernel": platform.release(), "python": platform.python_version(),
            "machine": platform.machine()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evaluation.benchmarks", description=__doc__.split("\n\n")[1])
    parser.add_argument("--quick", action="store_true", help="a run under a minute, same keys")
    parser.add_argument("--json", action="store_true", help="JSON on stdout instead of the table")
    parser.add_argument("--latency-ms", type=int, default=500, help="simulated LLM latency per call")
    parser.add_argument("--output", type=Path, default=paths.REPO_ROOT / "evaluation" / "results" / "benchmarks.json",
                        help="where the JSON is written (default: %(default)s)")
    args = parser.parse_args(argv)
    queries = QUICK if args.quick else QUERIES
    latency = (min(args.latency_ms, 200) if args.quick else args.latency_ms) / 1000
    try:
        with SpokeLauncher() as launcher:
            instant = e2e.run(queries, NO_LATENCY, launcher)
            slow = e2e.run(queries, LatencyModel(fixed_s=latency), launcher)
            iso = isolation.run(launcher, starts=10 if args.quick else 40, round_trips=200 if args.quick else 2000,
                                idle_counts=(1, 10) if args.quick else (1, 10, 50))
    except SecGPTError as exc:
        print(f"python -m evaluation.benchmarks: {exc}", file=sys.stderr)
        return 2
    plans = planning.run((10, 100) if args.quick else (10, 100, 1000))
    result = {
        "generated": datetime.now(timezone.utc).isoformat(timespec="seconds"), "quick": args.quick,
        "machine": machine(), "e2e_instant": instant, "e2e_latency": slow,
        "llm_calls": slow["llm_calls"], "prompt_chars": slow["prompt_chars"],
        "e2e_ratio_p50": slow["e2e_ratio_p50"], "e2e_ratio_p75": slow["e2e_ratio_p75"],
        "e2e_ratio_max": slow["e2e_ratio_max"], **{k: iso[k] for k in iso},
        **{k: slow[k] for k in ("strict_vs_faithful_p50", "strict_vs_faithful_total", "strict_vs_faithful_max")},
        "planner_prompt_chars": {n: v["planner_prompt_chars"] for n, v in plans.items()},
        "strict_planner_prompt_chars": {n: v["strict_planner_prompt_chars"] for n, v in plans.items()},
        "planning": plans,
    }
    result["targets"] = {k: {"target": t, "value": result[k], "met": result[k] <= t} for k, t in TARGETS.items()}
    try:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(result, indent=2))
    except OSError as exc:
        print(f"python -m evaluation.benchmarks: cannot write {args.output} ({exc.strerror}); "
              "give a writable path with --output", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result))
    else:
        print(report(result))
    return 0


def report(r: dict) -> str:
    lines = [f"Machine: {r['machine']['cpus']} CPUs, Linux {r['machine']['kernel']}, Python {r['machine']['python']}",
             "", f"End to end, {len(r['e2e_latency']['queries'])} queries, simulated LLM latency "
                 f"{r['e2e_latency']['latency_ms']} ms per call (SecGPT / VanillaGPT):",
             f"{'kind':<10} {'SecGPT s':>9} {'Vanilla s':>9} {'ratio':>6} {'calls S/V':>9} "
             f"{'prompt chars S/V':>17}  query"]
    for row in r["e2e_latency"]["queries"]:
        s, v = row["SecGPT"], row["VanillaGPT"]
        lines.append(f"{row['kind']:<10} {s['seconds']:9.3f} {v['seconds']:9.3f} {row['ratio']:6.2f} "
                     f"{s['llm_calls']:>4}/{v['llm_calls']:<4} {s['prompt_chars']:>8}/{v['prompt_chars']:<8}  "
                     f"{row['query'][:48]}")
    i = r["e2e_instant"]
    lines += ["", f"time ratio SecGPT/VanillaGPT with latency: p50 {r['e2e_ratio_p50']}, p75 {r['e2e_ratio_p75']}, "
                  f"max {r['e2e_ratio_max']}; instant model: p50 {i['e2e_ratio_p50']}, max {i['e2e_ratio_max']}",
              f"LLM calls per query: SecGPT {r['llm_calls']['SecGPT']}, VanillaGPT {r['llm_calls']['VanillaGPT']}, "
              f"SecGPT strict {r['llm_calls']['SecGPT-strict']}",
              f"time ratio SecGPT strict/faithful (same run, same queries): total {r['strict_vs_faithful_total']}, "
              f"p50 {r['strict_vs_faithful_p50']}, max {r['strict_vs_faithful_max']}",
              f"spoke start p50 {r['spoke_start_p50_ms']} ms, p95 {r['spoke_start_p95_ms']} ms; "
              f"round trip p50 {r['rtt_p50_ms']} ms, p95 {r['rtt_p95_ms']} ms; {r['messages_per_second']} messages/s",
              "idle spokes: " + "; ".join(f"{n}: PSS {m['pss_mb']} MB, RSS {m['rss_mb']} MB each"
                                          for n, m in r["idle_spokes"].items()),
              "planner prompt (chars) by installed apps: " + ", ".join(
                  f"{n}: {c}" for n, c in r["planner_prompt_chars"].items())
              + "; strict: " + ", ".join(f"{n}: {c}" for n, c in r["strict_planner_prompt_chars"].items()),
              "", "targets:"]
    for key, t in r["targets"].items():
        lines.append(f"  {key} <= {t['target']}: {t['value']} {'met' if t['met'] else 'MISSED'}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
