"""Runs in: hub, vanillagpt.

Failures: why an answer was not produced by the system working as designed.

An answer carries one (``error``) when something broke on the way: the LLM call
failed or timed out, memory was unreachable, a spoke died on its own or did not
answer in time, or a spoke could not be started. An evaluation must count such a
run apart: neither as an attack that succeeded nor as one that was stopped.

What the system decides is a result, never a failure: a permission refused, a
budget exceeded, egress denied, a spoke stopped by the hub for breaking the
protocol, no app for the request, an app's own error answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from helpers.utilities.errors import LLMError, MemoryUnavailable, SpokeError

FailureKind = Literal["spoke_crash", "llm_error", "timeout", "memory", "internal"]


@dataclass(frozen=True)
class Failure:
    """``spoke_crash``: a spoke exited, was killed by a signal or closed its channel without the
    hub deciding so, or could not be started (its sandbox or app code failed at start);
    ``llm_error``: an LLM call failed; ``timeout``: an LLM call or a spoke did not answer in
    time; ``memory``: Redis could not be reached; ``internal``: anything else that broke (a hub
    bug, a configuration that keeps a spoke from starting)."""
    kind: FailureKind
    message: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"


def failure_of(exc: BaseException) -> Failure:
    """The failure an exception stands for."""
    if isinstance(exc, LLMError):
        return Failure("timeout" if exc.category == "timeout" else "llm_error", str(exc))
    if isinstance(exc, MemoryUnavailable):
        return Failure("memory", str(exc))
    if isinstance(exc, SpokeError):
        return Failure("spoke_crash", str(exc))
    return Failure("internal", f"{type(exc).__name__}: {exc}")
