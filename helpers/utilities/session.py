"""Runs in: hub, vanillagpt.

One session interface, declared once, that SecGPT's hub (hub/hub.py) and VanillaGPT
(vanillagpt/vanillagpt.py) both implement: start, answer a query with a typed ``Answer``
(which carries the failure, if any), cancel an answer, close.

Callers (the chat programs, the case studies, the AgentDojo runner, the benchmarks) use
a system only through ``Session``: what one system has and the other has not (permission
questions, the spokes' LLM contexts) is asked through the interface, and the other
system answers with its own values (VanillaGPT asks no question and has no spokes).
A caller must never branch on which system it holds nor reach into its internals; a
new need is a new member here, implemented by both.

This module is shared ground: it must never import hub/, spoke/ or vanillagpt/.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from helpers.isc.messages import PlanStep
from helpers.utilities.failures import Failure

if TYPE_CHECKING:
    from helpers.permission.store import Category
    from helpers.tools.tool_importer import ToolImporter


@dataclass
class Answer:
    text: str
    plan: list[PlanStep] = field(default_factory=list)
    route: str = ""
    notes: list[str] = field(default_factory=list)
    # Set when the answer is not the system's own result: the first thing that broke on the way
    # (the text still says "Sorry, ..." to the user). None for every result, refusals included.
    error: Failure | None = None


@dataclass(frozen=True)
class SessionInfo:
    """What a session is, as its callers show and label it."""
    system: str               # "SecGPT" or "VanillaGPT": the name the user sees
    isolation: str | None     # SecGPT's isolation mode (faithful or strict); None: apps are not isolated
    asks_permissions: bool    # False: every app may do everything and nothing is ever asked
    plans: bool               # True: each query is planned first (``Answer.plan``); False: there is no planner


@dataclass(frozen=True)
class SessionStats:
    """LLM use since the session was made: every call, the planner's, memory upkeep's and every
    app's included (a benchmark subtracts two readings to get one query's share)."""
    llm_calls: int
    prompt_chars: int  # characters of every prompt sent (messages and tool descriptions)
    # SecGPT: no-app answers started beside the planner (counted in llm_calls), and how many of them
    # the query turned out to need (the rest were wasted calls: the plan had steps).
    prefetched: int = 0
    prefetches_used: int = 0


@dataclass(frozen=True)
class PermissionRecord:
    """One permission decision of this session, in the order they were taken."""
    category: Category
    key: str         # the app, or "A->B" for A using B
    expected: bool   # whether the plan foresaw the operation
    allowed: bool
    source: str      # who decided: "stored" (a standing grant), "user", a consent policy's name, ...


@runtime_checkable
class Session(Protocol):
    """A chat session of one user with one system. Use it as a context manager (``start`` on
    entry, ``close`` on exit); ``answer`` before ``start`` raises."""

    @property
    def info(self) -> SessionInfo: ...

    # The app catalogue the session was made with (what the user sees in /apps).
    importer: ToolImporter

    def start(self) -> Session: ...

    def answer(self, query: str) -> Answer:
        """The answer to one query. A failure on the way (the LLM, memory, a spoke) comes back
        in ``Answer.error``, not as an exception; a refusal is a result, not an error."""
        ...

    def cancel(self) -> None:
        """After an interrupted ``answer``: stop whatever still works on it."""
        ...

    def close(self) -> None: ...

    def __enter__(self) -> Session: ...

    def __exit__(self, *exc: object) -> None: ...

    def stats(self) -> SessionStats: ...

    def permission_log(self) -> list[PermissionRecord]:
        """Every permission decision taken in this session, in order ([] where nothing is asked)."""
        ...

    def llm_contexts(self) -> dict[str, list[str]]:
        """What reached each isolated LLM context in this session: for each spoke, the text of
        every LLM request it sent (messages, then tool descriptions). {} where there are no spokes."""
        ...

    def grants(self) -> dict[str, dict[str, str]]:
        """The user's stored permissions: {key: {category: scope}} ({} where nothing is asked)."""
        ...

    def revoke(self, key: str, category: Category | None = None) -> bool:
        """Revoke a stored permission (every category if ``category`` is None); False if none was found."""
        ...
