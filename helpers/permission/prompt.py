"""Runs in: hub, vanillagpt.

Asking the user: the permission dialog and the non-interactive consent policies.

The dialog keeps the original's wording and choices, and adds what decides the
answer: the input of the call (or each planned step's input), and why an
operation is not expected. Whatever an app or the planner wrote is cut to length
and made inert for the terminal before it is shown. A policy answers the same
question without a person, for scripts, case studies and benchmarks:
``expected`` approves what the plan expected and refuses the rest, ``all`` and
``none`` do what they say, ``ask`` shows the dialog. Non-interactive answers are
never stored as lasting grants.

Lasting grants ("Allow for this Session", "Always Allow") are bound to the
functionalities the question was about, and answer only an operation the plan
expected: a call the plan did not expect is asked (or refused by the policy),
whatever was granted before. Data requests are never part of a plan, so a data
grant answers them as before.

No prompt flood: the user's refusal of an operation the plan did not expect stands
for the rest of the query (the same key, category and functionalities: any input),
and at most ``MAX_QUESTIONS_PER_QUERY`` questions are put per query; past that,
whatever the plan did not expect is refused without asking, and the user is told
once, with the count.
"""

from __future__ import annotations

import json
import threading
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
UNEXPECTED = "WARNING: this operation was NOT expected by the plan for your request."

# Categories whose standing grants answer only what the plan expected. Data requests are never
# in a plan (always "not expected"), so a data grant answers them as it always did.
GRANTS_NEED_EXPECTED: frozenset[Category] = frozenset({"exec", "collab"})

# Questions per query, all categories together. A PermissionManager may be given fewer, never more.
MAX_QUESTIONS_PER_QUERY = 8

# How much of one value (a call's input, a planned step's input, an answer) a dialog shows.
VALUE_LIMIT = 240


def shown(value: object, limit: int = VALUE_LIMIT) -> str:
    """``value`` as a dialog shows it: JSON unless it is text, on one line (a newline in it
    cannot start a fake line of the dialog), cut to ``limit`` characters, inert for the terminal."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = " ".join(safe_text(text).split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


@dataclass(frozen=True)
class PermissionRequest:
    user: str
    key: str              # an app, or "A->B" for A using B
    category: Category
    details: str          # what exactly is asked: the functionality and its input, the data, the response
    expected: bool        # did the plan foresee this operation, inputs included?
    functionalities: tuple[str, ...] = ()  # what a lasting grant is bound to (none: the whole key)
    warning: str = ""     # why it is not expected (more than "not in the plan"), or what to check if it is

    def question(self) -> str:
        subject = self.key.replace("->", " to use ") if "->" in self.key else self.key
        return f"Allow {subject} to {VERBS[self.category]}?"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    scope: Scope | None   # how long the grant lasts, None when refused
    source: str           # "stored", "user", "refused earlier", "cap" (past the cap), or the policy's name


def dialog_text(request: PermissionRequest) -> str:
    lines = [request.question()]
    if not request.expected:
        lines.append(UNEXPECTED)
        if request.warning:
            lines.append(f"Why: {request.warning}")
    elif request.warning:
        lines.append(f"Note: {request.warning}")
    lines.append(f"Details: {request.details}")
    if request.functionalities and request.category in GRANTS_NEED_EXPECTED:
        lines.append(f"(2 and 3 are kept for {', '.join(request.functionalities)} only; a kept grant never "
                     "answers for a call the plan did not expect.)")
    lines.append(MENU)
    return safe_text("\n".join(lines))  # details quote app output: no escape sequence may reach the terminal


# (user, key, category, functionalities): an operation whatever its input.
_Operation = tuple[str, str, Category, tuple[str, ...]]


def _same(request: PermissionRequest) -> _Operation:
    """What a refusal stands for: the same operation by the same app, whatever its input."""
    return request.user, request.key, request.category, request.functionalities


def ask_user(request: PermissionRequest, read: Callable[[str], str] = input,
             write: Callable[[str], None] = print) -> Scope | None:
    write(dialog_text(request))
    while True:
        answer = read("Your choice (1-4): ").strip()
        if answer in CHOICES:
            return CHOICES[answer]
        write("Please enter 1, 2, 3 or 4.")


class PermissionManager:
    """Looks up standing grants, otherwise asks (the user or a policy), and records the answer.

    ``begin_query`` starts a query: its refusals and its count of questions. Within it, an
    operation the plan did not expect is refused without asking when the user refused the same
    one before (source ``refused earlier``) or ``max_questions`` were asked already (``cap``)."""

    def __init__(self, store: PermissionStore, mode: ConsentMode = "ask",
                 read: Callable[[str], str] = input, write: Callable[[str], None] = print,
                 on_decision: Callable[[PermissionRequest, Decision], None] | None = None,
                 max_questions: int = MAX_QUESTIONS_PER_QUERY) -> None:
        if mode not in CONSENT_MODES:
            raise ValueError(f"consent mode must be one of {', '.join(CONSENT_MODES)}")
        if not 0 <= max_questions <= MAX_QUESTIONS_PER_QUERY:
            raise ValueError(f"max_questions must be from 0 to {MAX_QUESTIONS_PER_QUERY}: the cap on questions per "
                             "query can be lowered, never raised")
        self.store, self.mode, self._read, self._write = store, mode, read, write
        self._on_decision = on_decision
        self.max_questions = max_questions
        self.asked = 0    # questions put to the user in this query
        self.capped = 0   # operations refused without asking in this query, past the cap
        self._refusals: set[_Operation] = set()  # unexpected operations the user refused in this query
        self._lock = threading.RLock()

    def begin_query(self) -> None:
        self.asked = self.capped = 0
        self._refusals.clear()

    def check(self, request: PermissionRequest) -> Decision:
        with self._lock:  # one question at a time, even when apps are served at once (strict phrasing)
            decision = self._decide(request)
            if self._on_decision:
                self._on_decision(request, decision)
            return decision

    def _decide(self, request: PermissionRequest) -> Decision:
        standing = self._standing(request)
        if standing is not None:
            return Decision(True, standing, "stored")
        if self.mode != "ask":
            allowed = self.mode == "all" or (self.mode == "expected" and request.expected)
            return Decision(allowed, "one_time" if allowed else None, f"policy:{self.mode}")
        if not request.expected and (unasked := self._unasked(request)) is not None:
            return unasked
        self.asked += 1
        scope = ask_user(request, self._read, self._write)
        if scope in ("session", "permanent"):
            self._keep(request, scope)
        elif scope is None and not request.expected:
            self._refusals.add(_same(request))
        return Decision(scope is not None, scope, "user")

    def _unasked(self, request: PermissionRequest) -> Decision | None:
        """The answer to an unexpected operation without a question, if it gets one: refused
        when the user refused the same in this query, or when the query had its questions."""
        if _same(request) in self._refusals:
            return Decision(False, None, "refused earlier")
        if self.asked >= self.max_questions:
            self.capped += 1
            if self.capped == 1:
                self._write(f"SecGPT has asked you {self.asked} questions for this request, the most it asks for "
                            "one; from now on it refuses, without asking, whatever the plan did not expect.")
            return Decision(False, None, "cap")
        return None

    def _standing(self, request: PermissionRequest) -> Scope | None:
        """The stored grant that answers ``request``: bound to its functionalities (or a whole-app
        grant written before grants were bound), and only for what the plan expected."""
        if not request.expected and request.category in GRANTS_NEED_EXPECTED:
            return None
        return self.store.consume(request.user, request.key, request.category, request.functionalities)

    def _keep(self, request: PermissionRequest, scope: Scope) -> None:
        self.store.grant(request.user, request.key, request.category, scope, request.functionalities)
