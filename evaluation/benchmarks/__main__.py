"""Runs in: hub, vanillagpt (the evaluation's driver, beside the system under test).

python -m evaluation.benchmarks [--quick] [--json] [--latency-model fixed|tokens|both] [--latency-ms N]
[--ttft-ms MS] [--ms-per-token MS] [--port-python PATH | --no-port] [--output FILE]

Table on stdout (or JSON with --json); the JSON is also written to FILE (default
evaluation/results/benchmarks.json). The end-to-end queries run with each latency model asked
for (default both: a fixed time per LLM call, and time to first token + output tokens), and once
with an instant model; the LlamaIndex port of SecGPT runs beside them when its own environment
is installed (evaluation/benchmarks/port.py). Everything runs in a scratch data directory:
nothing is written but FILE.
Targets are checked here and reported, never asserted by the tests.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path

from evaluation.benchmarks import e2e, isolation, planning, port
from evaluation.benchmarks.queries import QUERIES, QUICK
from helpers.configs import paths
from helpers.llm.latency import BOTH, NO_LATENCY, latency_models, latency_options
from helpers.sandbox.launcher import SpokeLauncher
from helpers.utilities.environment import scratch_data_dir
from helpers.utilities.errors import SecGPTError

TARGETS = {"e2e_ratio_max": 1.10, "e2e_tokens_ratio_max": 1.10, "strict_vs_faithful_total": 1.10,
           "spoke_start_p50_ms": 10.0, "rtt_p50_ms": 0.2, "pss_per_idle_spoke_mb": 40.0}
# The end-to-end run of each latency model, under these keys.
E2E_KEYS = {"fixed": "e2e_latency", "tokens": "e2e_tokens"}


def machine() -> dict:
    return {"cpus": os.cpu_count(), "kernel": platform.release(), "python": platform.python_version(),
            "machine": platform.machine()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evaluation.benchmarks", description=__doc__.split("\n\n")[2])
    parser.add_argument("--quick", action="store_true", help="a run under a minute, same keys")
    parser.add_argument("--json", action="store_true", help="JSON on stdout instead of the table")
    parser.add_argument("--latency-ms", type=int, default=500, help="fixed model: time per call (default 500)")
    latency_options(parser, default=BOTH)
    parser.add_argument("--port-python", type=Path, default=None, metavar="PATH",
                        help="the LlamaIndex port's interpreter (default: SECGPT_PORT_PYTHON, "
                             "else .venv-port/bin/python)")
    parser.add_argument("--no-port", action="store_true", help="leave the LlamaIndex port's row out")
    parser.add_argument("--output", type=Path, default=paths.REPO_ROOT / "evaluation" / "results" / "benchmarks.json",
                        help="where the JSON is written (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        models = latency_models(args, fixed_ms=min(args.latency_ms, 200) if args.quick else None)
    except ValueError as exc:
        parser.error(str(exc))
    queries = QUICK if args.quick else QUERIES
    try:
        with scratch_data_dir("secgpt-bench-"), SpokeLauncher() as launcher:
            runs = {"e2e_instant": e2e.run(queries, NO_LATENCY, launcher)}
            for kind, model in models.items():
                runs[E2E_KEYS[kind]] = e2e.run(queries, model, launcher)
            iso = isolation.run(launcher, starts=10 if args.quick else 40, round_trips=200 if args.quick else 2000,
                                idle_counts=(1, 10) if args.quick else (1, 10, 50))
    except SecGPTError as exc:
        print(f"python -m evaluation.benchmarks: {exc}", file=sys.stderr)
        return 2
    plans = planning.run((10, 100) if args.quick else (10, 100, 1000))
    ports = {} if args.no_port else {kind: port.run(model, args.quick, args.port_python)
                                     for kind, model in models.items()}
    main_run = runs[E2E_KEYS[next(iter(models))]]  # the fixed model's when it ran
    result = {
        "generated": datetime.now(timezone.utc).isoformat(timespec="seconds"), "quick": args.quick,
        "machine": machine(), **runs,
        "llm_calls": main_run["llm_calls"], "prompt_chars": main_run["prompt_chars"],
        **{k: main_run[k] for k in ("strict_vs_faithful_p50", "strict_vs_faithful_total", "strict_vs_faithful_max")},
        **iso,
        "planner_prompt_chars": {n: v["planner_prompt_chars"] for n, v in plans.items()},
        "strict_planner_prompt_chars": {n: v["strict_planner_prompt_chars"] for n, v in plans.items()},
        "planning": plans,
    }
    if ports:
        result["port"] = ports
    for kind, key in E2E_KEYS.items():
        if key in runs:
            prefix = "e2e" if kind == "fixed" else "e2e_tokens"
            result.update({f"{prefix}_ratio_{q}": runs[key][f"e2e_ratio_{q}"] for q in ("p50", "p75", "max")})
    result["targets"] = {k: {"target": t, "value": result[k], "met": result[k] <= t}
                         for k, t in TARGETS.items() if k in result}
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
    lines = [f"Machine: {r['machine']['cpus']} CPUs, Linux {r['machine']['kernel']}, Python {r['machine']['python']}"]
    for key in E2E_KEYS.values():
        if key in r:
            lines += ["", *e2e_table(r[key])]
    for kind, row in r.get("port", {}).items():
        lines += ["", port_line(kind, row)]
    i = r["e2e_instant"]
    lines += ["", f"instant model (no LLM time at all): time ratio p50 {i['e2e_ratio_p50']}, max {i['e2e_ratio_max']}",
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


def port_line(kind: str, row: dict) -> str:
    if "skipped" in row:
        return row["skipped"]
    pss = f"; PSS per port spoke {row['spoke_pss_mb']} MB" if row.get("spoke_pss_mb") else ""
    errors = f"; {len(row['errors'])} errored (left out)" if row["errors"] else ""
    return (f"LlamaIndex port ({row['port']}) against its baseline ({row['baseline']}), {kind} latency, "
            f"{len(row['rows'])} queries: time ratio p50 {row['ratio_p50']}, p75 {row['ratio_p75']}, max "
            f"{row['ratio_max']}; LLM calls per query {row['llm_calls']['port']} / {row['llm_calls']['baseline']}"
            f"{pss}{errors}")


def e2e_table(run: dict) -> list[str]:
    lines = [f"End to end, {len(run['queries'])} queries, simulated LLM latency {run['latency_model']} "
             "(SecGPT / VanillaGPT):",
             f"{'kind':<10} {'SecGPT s':>9} {'Vanilla s':>9} {'ratio':>6} {'calls S/V':>9} "
             f"{'prompt chars S/V':>17}  query"]
    for row in run["queries"]:
        s, v = row["SecGPT"], row["VanillaGPT"]
        lines.append(f"{row['kind']:<10} {s['seconds']:9.3f} {v['seconds']:9.3f} {row['ratio']:6.2f} "
                     f"{s['llm_calls']:>4}/{v['llm_calls']:<4} {s['prompt_chars']:>8}/{v['prompt_chars']:<8}  "
                     f"{row['query'][:48]}")
    p = run["prefetch"]["SecGPT"]
    lines += [f"time ratio SecGPT/VanillaGPT: p50 {run['e2e_ratio_p50']}, p75 {run['e2e_ratio_p75']}, "
              f"max {run['e2e_ratio_max']}; strict/faithful total {run['strict_vs_faithful_total']}",
              f"no-app answer started beside the planner: {p['started']} of {p['queries']} queries, used {p['used']}, "
              f"wasted {p['wasted']} (the plan had steps), missed {p['missed']} (no app used, none started): "
              f"misprediction rate {p['misprediction_rate']}"]
    return lines


if __name__ == "__main__":
    sys.exit(main())
