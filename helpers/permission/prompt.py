"""Asking the user: the permission dialog and the non-interactive consent policies.

The dialog keeps the original's wording and choices. A policy answers the same
question without a person, for scripts, case studies and benchmarks:
``expected`` approves what the plan expected and refuses the rest, ``all`` and
``none`` do what they say, ``ask`` shows the dialog. Non-interactive answers are
never stored as lasting grants.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from helpers.permission.store import Category, PermissionStore, Scope
from helpers.utilities.terminal import safe_text

ConsentMode = Literal["ask", "expected", "all", "none"]
CONSENT_MODES: tuple[ConsentMode, ...] = ("ask", "expected", "all", "none")

VERBS: dict[Category, str] = {"exec": "execute", "data": "access data", "collab": "share data"}
CHOICES: dict[str, Scope | None] = {"1": "one_time", "2": "session", "3": "permanent", "4": None}
MENU = "1: Allow Once\n2: Allow for this Session\n3: Always Allow\n4: Don't Allow"


@dataclass(frozen=True)
class PermissionRequest:
    user: str
    key: str              # an app, or "A->B" for A using B
    category: Category
    details: str          # what exactly is asked: the functionality, the data, the response
    expected: bool        # did the plan foresee this operation?

    def question(self) -> str:
        subject = self.key.replace("->", " to use ") if "->" in self.key else self.key
        return f"Allow {subject} to {VERBS[self.category]}?"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    scope: Scope | None   # how long the grant lasts, None when refused
    source: str           # "stored", "user", or the policy's name


def dialog_text(request: PermissionRequest) -> str:
    lines = [request.question()]
    if not request.expected:
        lines.append("WARNING: this operation was NOT expected by the plan for your request.")
    lines += [f"Details: {request.details}", MENU]
    return safe_text("\n".join(lines))  # details quote app output: no escape sequence may reach the terminal


def ask_user(request: PermissionRequest, read: Callable[[str], str] = input,
             write: Callable[[str], None] = print) -> Scope | None:
    write(dialog_text(request))
    while True:
        answer = read("Your choice (1-4): ").strip()
        if answer in CHOICES:
            return CHOICES[answer]
        write("Please enter 1, 2, 3 or 4.")


class PermissionManager:
    """Looks up standing grants, otherwise asks (the user or a policy), and records the answer."""

    def __init__(self, store: PermissionStore, mode: ConsentMode = "ask",
                 read: Callable[[str], str] = input, write: Callable[[str], None] = print,
                 on_decision: Callable[[PermissionRequest, Decision], None] | None = None) -> None:
        if mode not in CONSENT_MODES:
            raise ValueError(f"consent mode must be one of {', '.join(CONSENT_MODES)}")
        self.store, self.mode, self._read, self._write = store, mode, read, write
        self._on_decision = on_decision

    def check(self, request: PermissionRequest) -> Decision:
        decision = self._decide(request)
        if self._on_decision:
            self._on_decision(request, decision)
        return decision

    def _decide(self, request: PermissionRequest) -> Decision:
        standing = self.store.consume(request.user, request.key, request.category)
        if standing is not None:
            return Decision(True, standing, "stored")
        if self.mode == "ask":
            scope = ask_user(request, self._read, self._write)
            if scope in ("session", "permanent"):
                self.store.grant(request.user, request.key, request.category, scope)
            return Decision(scope is not None, scope, "user")
        allowed = self.mode == "all" or (self.mode == "expected" and request.expected)
        return Decision(allowed, "one_time" if allowed else None, f"policy:{self.mode}")
