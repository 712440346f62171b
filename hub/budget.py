"""Runs in: hub.

Budgets, kept: what each app has cost the hub in the current query.

A query is one top-level exchange of the broker (the hub's request to the spoke
that handles the user's query, with everything served while it runs: other apps'
calls, their LLM calls, memory upkeep). While the broker serves a spoke's
request it says who pays (``charging``): an LLM call made then, the spoke's own
or a summary its history save set off, is charged to that app; audit lines are
charged to the app they name. The request that would go over is refused with a
``budget_exceeded`` message, and so is every later request of that app in the
query; the spoke is not stopped. The user is told once, in one line.

Pure bookkeeping: it never calls the LLM, the network or Redis.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from helpers.sandbox.budget import MAX_AUDIT_KIB, MAX_LLM_CALLS, MAX_PROMPT_KIB, Budget
from helpers.utilities.errors import SecGPTError

CATEGORY = "budget_exceeded"


class BudgetExceeded(SecGPTError):
    """An app's request would go over its budget for this query (a result for the spoke, not a crash)."""


@dataclass
class Spent:
    llm_calls: int = 0
    prompt_bytes: int = 0
    audit_bytes: int = 0
    audit_dropped: int = 0       # audit lines not written once over
    exceeded: str | None = None  # the message every later request of the query gets


class BudgetLedger:
    def __init__(self, audit=None, notify: Callable[[str], None] | None = None) -> None:
        """``audit``: an AuditLog, whose lines naming an app are charged to it (and which records
        each overrun); ``notify``: how the user is told of an overrun (one line)."""
        self.audit, self.notify = audit, notify
        self._spent: dict[str, Spent] = {}
        self._budgets: dict[str, Budget] = {}
        if audit is not None:
            audit.ledger = self

    # --- queries and payers ------------------------------------------------------------------
    def new_query(self) -> dict[str, Spent]:
        """Start counting afresh; returns what the last query cost, per app (also audited)."""
        last, self._spent = self._spent, {}
        if self.audit is not None:
            for app, spent in last.items():
                if spent.llm_calls or spent.audit_dropped or spent.exceeded:
                    self.audit.record("budget_spent", charge=False, app=app, llm_calls=spent.llm_calls,
                                      prompt_bytes=spent.prompt_bytes, audit_bytes=spent.audit_bytes,
                                      audit_dropped=spent.audit_dropped, exceeded=spent.exceeded)
        return last

    @contextmanager
    def charging(self, app: str, budget: Budget) -> Iterator[None]:
        """While this block runs, LLM calls are charged to ``app``."""
        self._budgets[app] = budget
        token = _PAYER.set((self, app))
        try:
            yield
        finally:
            _PAYER.reset(token)

    def spent(self, app: str) -> Spent:
        return self._spent.setdefault(app, Spent())

    def refusal(self, app: str) -> str | None:
        """Why every request of ``app`` is refused for the rest of the query, or None."""
        spent = self._spent.get(app)
        return spent.exceeded if spent else None

    # --- charges ------------------------------------------------------------------------------
    def charge_llm(self, app: str, size: int) -> None:
        """One LLM call of ``size`` prompt bytes for ``app``; BudgetExceeded if it would go over."""
        spent, budget = self.spent(app), self._budgets.get(app, Budget())
        if spent.exceeded:
            raise BudgetExceeded(spent.exceeded)
        if spent.llm_calls + 1 > budget.llm_calls:
            raise BudgetExceeded(self._exceed(app, f"{budget.llm_calls} LLM calls", "llm_calls"))
        if spent.prompt_bytes + size > budget.prompt_bytes:
            raise BudgetExceeded(self._exceed(
                app, f"{budget.prompt_kib} KiB of LLM prompts (this call: {size // 1024 + 1} KiB)", "prompt_kib"))
        spent.llm_calls += 1
        spent.prompt_bytes += size

    def charge_audit(self, app: str, size: int) -> bool:
        """An audit line of ``size`` bytes naming ``app``: False if it goes over (drop it)."""
        spent, budget = self.spent(app), self._budgets.get(app, Budget())
        if spent.audit_bytes + size > budget.audit_bytes:
            spent.audit_dropped += 1
            if not spent.exceeded:
                self._exceed(app, f"{budget.audit_kib} KiB of audit log", "audit_kib")
            return False
        spent.audit_bytes += size
        return True

    def _exceed(self, app: str, what: str, key: str) -> str:
        spent = self.spent(app)
        maximum = {"llm_calls": MAX_LLM_CALLS, "prompt_kib": MAX_PROMPT_KIB, "audit_kib": MAX_AUDIT_KIB}[key]
        spent.exceeded = (f"{CATEGORY}: {app} used its budget of {what} for this query; its further requests "
                          f"are refused until the next query (the app's manifest may set budget.{key}, "
                          f"up to {maximum})")
        if self.audit is not None:
            self.audit.record(CATEGORY, charge=False, app=app, budget=key, llm_calls=spent.llm_calls,
                              prompt_bytes=spent.prompt_bytes, audit_bytes=spent.audit_bytes)
        if self.notify is not None:
            self.notify(spent.exceeded)
        return spent.exceeded


# Who pays for the LLM call being made now: (ledger, app), set by ``charging``; None for the
# hub's own calls (the planner, its own memory upkeep).
_PAYER: ContextVar[tuple[BudgetLedger, str] | None] = ContextVar("secgpt_budget_payer", default=None)


def charge_llm(size: int) -> None:
    """Charge one LLM call of ``size`` prompt bytes to whoever pays now (nobody: the hub's own)."""
    payer = _PAYER.get()
    if payer is not None:
        payer[0].charge_llm(payer[1], size)
