"""Helpers for the tests that run code in a real spoke or look into a process from outside."""

from __future__ import annotations

import os

from helpers.sandbox.app_spec import AppSpec
from helpers.sandbox.sandbox import SANDBOX_APP
from hub.broker import SpokeBroker


def is_root() -> bool:
    return os.geteuid() == 0


def sandbox_code(hub: SpokeBroker, code: str, timeout: float = 20.0, **app_kwargs):
    """Run ``code`` as the sandbox app in a new spoke; returns the outcome."""
    spoke = hub.start(AppSpec(name=app_kwargs.pop("name", "sandbox"), module=SANDBOX_APP.module, **app_kwargs))
    try:
        return hub.call(spoke, "run_code", {"code": code}, timeout=timeout)
    finally:
        if spoke.alive:
            hub.stop(spoke)


def memory_contains(pid: int, needle: bytes) -> bool:
    """Whether ``needle`` is anywhere in the readable memory of process ``pid`` (needs root)."""
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for line in maps:
            start, end = (int(x, 16) for x in line.split()[0].split("-"))
            if "r" not in line.split()[1] or end - start > 1 << 30:
                continue
            try:
                mem.seek(start)
                if needle in mem.read(end - start):
                    return True
            except (OSError, ValueError, OverflowError):
                continue
    return False
