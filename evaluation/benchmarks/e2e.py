"""Runs in: hub, vanillagpt (the evaluation's driver, beside the system under test).

End to end: the same queries on SecGPT and VanillaGPT, interleaved, with the offline
model answering instantly and again after a simulated latency per LLM call."""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

from evaluation.benchmarks.queries import FUNCTIONALITIES, SCRIPT
from evaluation.case_studies import case_world
from helpers.llm.config import LLMConfig
from helpers.llm.latency import LatencyModel
from helpers.tools.google.local_api import LocalGoogleAccount
from helpers.utilities.errors import SecGPTError
from helpers.utilities.session import Session

# Timed side by side, each query on all three in turn (the first of each query rotates).
SYSTEMS = ("SecGPT", "VanillaGPT", "SecGPT-strict")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    k = (len(ordered) - 1) * q
    low = int(k)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


def prefetch_outcomes(rows: list[dict], system: str) -> dict:
    """How the no-app answer started beside the planner fared: used, wasted (the plan had steps),
    and missed (no app was used, but the retriever thought one might be, so nothing was started)."""
    runs = [r[system] for r in rows]
    started = sum(1 for r in runs if r["prefetched"])
    wasted = sum(1 for r in runs if r["prefetched"] and not r["prefetch_used"])
    missed = sum(1 for r in runs if r["route"] == "vanilla" and not r["prefetched"])
    return {"queries": len(runs), "started": started, "used": started - wasted, "wasted": wasted, "missed": missed,
            "misprediction_rate": round((wasted + missed) / len(runs), 3) if runs else 0.0}


def run(queries: list[tuple[str, str]], latency: LatencyModel, launcher) -> dict:
    from hub.hub import Hub
    from vanillagpt.vanillagpt import VanillaGPT

    case = {**FUNCTIONALITIES, "case_study": {}}
    with case_world(case) as data:
        LocalGoogleAccount(data / "google_local").add_email("billing@shop.example", "me@example.com",
                                                            "Your invoice", "Please pay by Friday.")
        script = data / "bench_script.json"
        script.write_text(json.dumps(SCRIPT))
        llm = LLMConfig(provider="scripted", model="scripted", script=Path(script), latency=latency)
        rows = []
        with Hub(llm, consent="all", launcher=launcher) as secgpt, VanillaGPT(llm) as vanilla, \
                Hub(llm, user_id="strict", consent="all", launcher=launcher, isolation="strict") as strict:
            systems: dict[str, Session] = {"SecGPT": secgpt, "VanillaGPT": vanilla, "SecGPT-strict": strict}
            for i, (kind, query) in enumerate(queries):
                row = {"kind": kind, "query": query}
                order = SYSTEMS[i % len(SYSTEMS):] + SYSTEMS[:i % len(SYSTEMS)]  # each goes first in turn
                for name in order:
                    session = systems[name]
                    before = session.stats()
                    started = time.perf_counter()
                    answer = session.answer(query)
                    if answer.error is not None:  # the time of a failed answer measures the failure
                        raise SecGPTError(f"the benchmark query {query!r} errored on {name} ({answer.error}); "
                                          "a timing of it would measure the failure, so none is reported")
                    seconds, after = time.perf_counter() - started, session.stats()
                    row[name] = {"seconds": seconds, "llm_calls": after.llm_calls - before.llm_calls,
                                 "prompt_chars": after.prompt_chars - before.prompt_chars, "answer": answer.text[:400],
                                 "route": answer.route,
                                 "prefetched": after.prefetched - before.prefetched,
                                 "prefetch_used": after.prefetches_used - before.prefetches_used}
                row["ratio"] = row["SecGPT"]["seconds"] / row["VanillaGPT"]["seconds"]
                row["strict_ratio"] = row["SecGPT-strict"]["seconds"] / row["SecGPT"]["seconds"]
                rows.append(row)
    ratios = [r["ratio"] for r in rows]
    strict = [r["strict_ratio"] for r in rows]
    return {
        "latency_ms": round(latency.fixed_s * 1000), "latency": latency.as_dict(),
        "latency_model": latency.describe(),
        "queries": rows,
        "e2e_ratio_p50": round(percentile(ratios, 0.5), 3),
        "e2e_ratio_p75": round(percentile(ratios, 0.75), 3),
        "e2e_ratio_max": round(max(ratios), 3),
        "strict_vs_faithful_p50": round(percentile(strict, 0.5), 3),
        "strict_vs_faithful_total": round(sum(r["SecGPT-strict"]["seconds"] for r in rows)
                                          / sum(r["SecGPT"]["seconds"] for r in rows), 3),
        "strict_vs_faithful_max": round(max(strict), 3),
        "prefetch": {s: prefetch_outcomes(rows, s) for s in SYSTEMS if s != "VanillaGPT"},
        "llm_calls": {s: round(statistics.mean(r[s]["llm_calls"] for r in rows), 2) for s in SYSTEMS},
        "prompt_chars": {s: round(statistics.mean(r[s]["prompt_chars"] for r in rows)) for s in SYSTEMS},
    }
