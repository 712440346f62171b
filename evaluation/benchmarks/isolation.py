"""Runs in: hub (the evaluation's driver, beside the system under test).

The isolation machinery alone: spoke start, hub<->spoke round trip, memory per idle spoke.

A spoke start is timed through the broker, from ``SpokeBroker.start`` to its return (the
spoke confined, its report checked, its app module loaded); the breakdown splits the same
starts at the hub's view of each phase (``SpokeProcess.start_ms``).
"""

from __future__ import annotations

import time

from evaluation.benchmarks.e2e import percentile
from helpers.sandbox.app_spec import AppSpec
from helpers.sandbox.sandbox import SANDBOX_APP
from hub.audit import AuditLog
from hub.broker import SpokeBroker

APP = AppSpec(name="bench", module=SANDBOX_APP.module)


def _memory_kb(pid: int) -> tuple[int, int]:
    values = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("Pss", "Rss"):
                values[key] = int(rest.split()[0])
    return values["Pss"], values["Rss"]


def run(launcher, starts: int, round_trips: int, idle_counts: tuple[int, ...]) -> dict:
    broker = SpokeBroker(launcher, AuditLog(None))
    try:
        start_ms = []
        phases: dict[str, list[float]] = {}
        for _ in range(starts):
            t = time.perf_counter()
            handle = broker.start(APP)
            start_ms.append((time.perf_counter() - t) * 1000)
            for phase, ms in handle.process.start_ms.items():
                phases.setdefault(phase, []).append(ms)
            broker.stop(handle)
        handle = broker.start(APP)
        for _ in range(50):  # warm up: steady state, not first-call costs
            broker.call(handle, "no_such_functionality", {})
        rtt_ms = []
        for _ in range(round_trips):
            t = time.perf_counter()
            broker.call(handle, "no_such_functionality", {})  # request and typed answer, nothing else
            rtt_ms.append((time.perf_counter() - t) * 1000)
        broker.stop(handle)
        memory = {}
        for count in idle_counts:
            spokes = [broker.start(APP) for _ in range(count)]
            time.sleep(0.2)  # let them settle into idle
            samples = [_memory_kb(s.process.pid) for s in spokes]
            memory[str(count)] = {"pss_mb": round(sum(p for p, _ in samples) / len(samples) / 1024, 1),
                                  "rss_mb": round(sum(r for _, r in samples) / len(samples) / 1024, 1)}
            for s in spokes:
                broker.stop(s)
    finally:
        broker.close()
    rtt_mean = sum(rtt_ms) / len(rtt_ms)
    return {
        "spoke_start_p50_ms": round(percentile(start_ms, 0.5), 2),
        "spoke_start_p95_ms": round(percentile(start_ms, 0.95), 2),
        # ms from the spawn call until the zygote named the spoke's pid, its report was checked,
        # its app module loaded (each p50 on its own); children kept forked ahead by the zygote
        "spoke_start_breakdown_p50_ms": {phase: round(percentile(ms, 0.5), 2) for phase, ms in phases.items()},
        "spoke_pool": launcher.pool,
        "rtt_p50_ms": round(percentile(rtt_ms, 0.5), 3),
        "rtt_p95_ms": round(percentile(rtt_ms, 0.95), 3),
        "messages_per_second": round(2 * 1000 / rtt_mean),
        "idle_spokes": memory,
        "pss_per_idle_spoke_mb": max(m["pss_mb"] for m in memory.values()),
    }
