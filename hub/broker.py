"""Runs in: hub.

The hub's broker: runs apps in spokes and serves what spokes ask for while they work.

Trust rules enforced here:
* a message's sender is the spoke whose socket it arrived on; nothing inside a
  message can claim otherwise;
* every call has a deadline: a spoke that does not answer in time is killed;
  one that crashes is reported with its exit status; the hub carries on;
* a spoke that keeps sending invalid frames, or more requests than one call can
  need, is stopped;
* egress is decided per app (its own allowed domains) before the hub touches
  the network;
* what a spoke makes the hub spend (LLM calls, prompt and audit bytes) is
  charged to its app's budget for the query (``hub.budget``); the request that
  would go over, and every later one of that app in the query, is refused;
* what broke during the query (a spoke that died on its own or did not answer in
  time, one that could not start, a broker bug) is kept in ``failures``
  (``helpers.utilities.failures``) for the answer to report; what the hub
  decided (a stop for violations, a refusal, a budget) is a result, not a failure;
* every message in and out, and every decision, goes to the audit log.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from helpers.isc.channel import ChannelClosed, ChannelTimeout, Violation
from helpers.isc.framing import FrameTooLarge
from helpers.isc.messages import (
    AppRequest,
    AppResponse,
    DoneCall,
    ErrorMessage,
    FinalResponse,
    FunctionalityDenialResponse,
    HttpRequest,
    McpListRequest,
    McpListResponse,
    Message,
    NoFunctionalityResponse,
    PlanStep,
    QueryRequest,
)
from helpers.sandbox.app_spec import AppSpec
from helpers.sandbox.budget import MAX_REQUEST_TIMEOUT_S
from helpers.sandbox.http_broker import HttpBroker
from helpers.sandbox.launcher import SpokeLauncher, SpokeProcess, describe_exit
from helpers.utilities.errors import SpokeError
from helpers.utilities.failures import Failure, failure_of
from hub.audit import AuditLog
from hub.budget import BudgetExceeded, BudgetLedger

# What a spoke may ask the hub for, and what may answer the hub's request.
BROKERED = ("http_request", "llm_request", "memory_request", "function_probe_request", "app_request")
ANSWERS = ("app_response", "final_response", "no_functionality_response",
           "functionality_denial_response", "mcp_list_response", "error")
MAX_VIOLATIONS = 8
# Why a send to a spoke failed (``_send``), when the spoke is to blame.
NOT_READING, CLOSED = "stopped reading the hub's messages", "closed its channel"
MAX_REQUESTS_PER_CALL = 256

Outcome = (AppResponse | FinalResponse | NoFunctionalityResponse | FunctionalityDenialResponse | McpListResponse
           | ErrorMessage)


def describe(outcome: Outcome) -> str:
    """Why a spoke's answer is not the one asked for, in a few words (its message, its reason, or
    at least its kind)."""
    return getattr(outcome, "message", None) or getattr(outcome, "reason", None) or outcome.type


def busy_message(app: str) -> str:
    """Why a request to ``app``'s spoke is refused while it serves another: a spoke serves one
    request at a time, so a call chain that comes back to it (A -> B -> A) cannot be served."""
    return f"{app} is already busy in this call chain"


@dataclass
class SpokeHandle:
    app: AppSpec
    process: SpokeProcess
    violations: int = 0
    busy: bool = False
    stop_reason: str | None = None
    @property
    def alive(self) -> bool:
        return self.process.alive


Handler = Callable[[SpokeHandle, Message], Message]


class SpokeBroker:
    def __init__(self, launcher: SpokeLauncher, audit: AuditLog, http: HttpBroker | None = None,
                 *, max_violations: int = MAX_VIOLATIONS,
                 max_requests_per_call: int = MAX_REQUESTS_PER_CALL) -> None:
        self.launcher = launcher
        self.audit = audit
        self.http = http or HttpBroker()
        self.max_violations = max_violations
        self.max_requests_per_call = max_requests_per_call
        self.handlers: dict[str, Handler] = {"http_request": self._serve_http}
        self._ids = itertools.count(1)
        self.spokes: list[SpokeHandle] = []
        self.budgets = BudgetLedger(audit)  # per app, per query: a query is one top-level exchange
        self._depth = 0  # exchanges in progress (calls nest inside the query's; strict phrases apps at once)
        self._depth_lock = threading.Lock()
        self.failures: list[Failure] = []  # what broke, in order; the hub operator clears it per query

    def failed(self, failure: Failure) -> None:
        """Something broke (not a decision of the hub's): kept for the answer, and audited."""
        self.failures.append(failure)
        self.audit.record("failure", kind=failure.kind, message=failure.message)

    # --- spoke life cycle ------------------------------------------------------------------
    def start(self, app: AppSpec) -> SpokeHandle:
        started = time.perf_counter()
        try:
            process = self.launcher.spawn(app.policy(), app.module, app.profile)
        except SpokeError as exc:
            self.audit.record("spoke_refused", app=app.name, reason=str(exc))
            raise
        handle = SpokeHandle(app=app, process=process)
        self.spokes.append(handle)
        # The sandbox on record is the one the spoke reported before any app code ran (checked by
        # the launcher against what it asked for); nothing the app sends later replaces it.
        self.audit.record("spoke_started", app=app.name, pid=process.pid, sandbox=process.sandbox,
                          ms=round((time.perf_counter() - started) * 1000, 2))
        return handle

    def stop(self, handle: SpokeHandle, reason: str = "stopped by the hub") -> str:
        if handle.stop_reason is None:
            handle.stop_reason = reason
        exit = self.launcher.release(handle.process)
        self.audit.record("spoke_stopped", app=handle.app.name, pid=handle.process.pid,
                          reason=handle.stop_reason, exit=describe_exit(exit))
        if handle in self.spokes:
            self.spokes.remove(handle)
        return describe_exit(exit)

    def close(self) -> None:
        for handle in list(self.spokes):
            self.stop(handle, "hub shutting down")
        self.http.close()

    # --- one request to a spoke, serving it until it answers ---------------------------------------
    def call(self, handle: SpokeHandle, functionality: str, request: dict,
             timeout: float | None = None) -> Outcome:
        """Run one functionality of the spoke's app directly."""
        outgoing = AppRequest(id=next(self._ids), functionality=functionality, request=request)
        return self.exchange(handle, outgoing, timeout)

    def query(self, handle: SpokeHandle, query: str, plan: list[PlanStep], expected: list[str],
              timeout: float | None = None, results: list[DoneCall] | None = None,
              tools: bool = True) -> Outcome:
        """Have the spoke's agent handle a user query (or, given ``results``, phrase them)."""
        outgoing = QueryRequest(id=next(self._ids), query=query, plan=plan, expected=expected,
                                results=results or [], tools=tools)
        return self.exchange(handle, outgoing, timeout)

    def list_mcp_tools(self, handle: SpokeHandle, timeout: float | None = None) -> Outcome:
        """The live tool list of the spoke's MCP server (installing or checking an MCP app)."""
        return self.exchange(handle, McpListRequest(id=next(self._ids)), timeout)

    @contextmanager
    def one_query(self) -> Iterator[None]:
        """Several top-level exchanges that make one user query (strict mode: the hub's calls of
        each planned step, then each app's phrasing): one budget per app for all of them."""
        self._enter()
        try:
            yield
        finally:
            self._leave()

    def _enter(self) -> None:
        """One more exchange in progress; the first of a query starts its budgets."""
        with self._depth_lock:
            if self._depth == 0:
                self.budgets.new_query()
            self._depth += 1

    def _leave(self) -> None:
        with self._depth_lock:
            self._depth -= 1

    def exchange(self, handle: SpokeHandle, outgoing: AppRequest | QueryRequest | McpListRequest,
                 timeout: float | None = None) -> Outcome:
        """Send one request and serve the spoke's own requests until it answers."""
        app = handle.app.name
        if not handle.alive:
            message = (f"the spoke for {app} is not running "
                       f"({handle.stop_reason or describe_exit(handle.process.exit)})")
            if handle.stop_reason is None:  # it died on its own
                self.failed(Failure("spoke_crash", message))
            return ErrorMessage(code="unavailable", message=message)
        if handle.busy:
            return ErrorMessage(code="unavailable", message=busy_message(app))
        limit = timeout if timeout is not None else min(handle.app.limits.request_timeout_s, MAX_REQUEST_TIMEOUT_S)
        deadline = time.monotonic() + limit
        handle.busy = True
        self._enter()
        try:
            if (failure := self._send(handle, outgoing)) is not None:
                return self._send_failed(handle, outgoing.id, failure)
            return self._serve_until_answer(handle, outgoing, deadline, limit)
        finally:
            handle.busy = False
            self._leave()

    def _serve_until_answer(self, handle: SpokeHandle, outgoing: AppRequest | QueryRequest | McpListRequest,
                            deadline: float,
                            limit: float) -> Outcome:
        app = handle.app.name
        served = 0
        while True:
            try:
                incoming = handle.process.channel.recv(deadline)
            except ChannelTimeout:
                self.stop(handle, f"no answer within {limit:g}s")
                message = f"{app} did not answer within {limit:g}s; the hub stopped it"
                self.failed(Failure("timeout", message))
                return ErrorMessage(id=outgoing.id, code="timeout", message=message)
            except ChannelClosed as closed:
                return self._crashed(handle, outgoing.id, closed.truncated)
            if isinstance(incoming, Violation):
                stopped = self._violation(handle, incoming.code, incoming.detail)
            elif incoming.type in ANSWERS and getattr(incoming, "id", None) == outgoing.id:
                self.audit.record("from_spoke", app=app, message=incoming)
                return incoming
            elif incoming.type in BROKERED:
                self.audit.record("from_spoke", app=app, message=incoming)
                served += 1
                if served > self.max_requests_per_call:
                    self.stop(handle, f"more than {self.max_requests_per_call} requests in one call")
                    return ErrorMessage(id=outgoing.id, code="rate_limited",
                                        message=f"{app} sent more than {self.max_requests_per_call} "
                                                "requests in one call; the hub stopped it")
                reply = self._broker(handle, incoming)
                if (failure := self._send(handle, reply)) is not None:
                    return self._send_failed(handle, outgoing.id, failure)
                continue
            else:
                stopped = self._violation(handle, "unexpected_message",
                                          f"{incoming.type} (id {getattr(incoming, 'id', None)}) is not "
                                          "expected from a spoke now")
            if stopped:
                return ErrorMessage(id=outgoing.id, code="app_error",
                                    message=f"{app} broke the protocol {handle.violations} times; "
                                            "the hub stopped it")

    def _broker(self, handle: SpokeHandle, message: Message) -> Message:
        handler = self.handlers.get(message.type)
        if handler is None:
            return ErrorMessage(id=message.id, code="unavailable",
                                message=f"{message.type} is not available in this hub")
        if (refusal := self.budgets.refusal(handle.app.name)) is not None:
            return ErrorMessage(id=message.id, code="rate_limited", message=refusal)
        try:
            with self.budgets.charging(handle.app.name, handle.app.budget):  # its LLM calls, its summaries
                return handler(handle, message)
        except BudgetExceeded as exc:
            return ErrorMessage(id=message.id, code="rate_limited", message=str(exc))
        except Exception as exc:  # noqa: BLE001 - a broker bug must not take the hub down
            self.audit.record("broker_error", app=handle.app.name, type=message.type, error=repr(exc))
            self.failed(failure_of(exc))  # an LLM or memory failure in a handler, or a bug
            return ErrorMessage(id=message.id, code="internal", message=f"the hub failed to serve "
                                f"{message.type}: {type(exc).__name__}")

    def _serve_http(self, handle: SpokeHandle, request: HttpRequest) -> Message:
        settings = handle.app.profile.settings if handle.app.profile else {}
        decision, reply = self.http.serve(handle.app.name, request, handle.app.allowed_domains, settings)
        self.audit.record("egress", app=handle.app.name, method=request.method, url=request.url,
                          allowed=decision.allowed, reason=decision.reason)
        return reply

    # --- helpers ----------------------------------------------------------------------------------------
    def _send(self, handle: SpokeHandle, message: Message) -> str | None:
        """Send to the spoke; None on success, else why it failed."""
        self.audit.record("to_spoke", app=handle.app.name, message=message)
        try:
            handle.process.channel.send(message)
            return None
        except FrameTooLarge as exc:
            if message.type in ("app_request", "query_request"):
                return f"could not be sent the request ({exc})"
            # An answer too large for one frame (a big HTTP body, a long history, a callee's
            # reply): the spoke gets an error instead, and the hub carries on.
            return self._send(handle, ErrorMessage(id=getattr(message, "id", None), code="frame_too_large",
                                                   message=f"the answer to this request is too large ({exc})"))
        except TimeoutError:
            return NOT_READING
        except OSError:
            return CLOSED

    def _send_failed(self, handle: SpokeHandle, request_id: int, failure: str) -> ErrorMessage:
        if failure == CLOSED:
            return self._crashed(handle, request_id, truncated=False)
        self.stop(handle, failure)
        message = f"{handle.app.name} {failure}; the hub stopped it"
        if failure == NOT_READING:  # it did not take the hub's message in time; too large is a limit
            self.failed(Failure("timeout", message))
        return ErrorMessage(id=request_id, code="app_error", message=message)

    def _violation(self, handle: SpokeHandle, code: str, detail: str) -> bool:
        """Answer an invalid frame with an error; stop the spoke after too many. True if stopped."""
        handle.violations += 1
        self.audit.record("violation", app=handle.app.name, code=code, detail=detail,
                          count=handle.violations)
        if handle.violations >= self.max_violations:
            self.stop(handle, f"{handle.violations} protocol violations")
            return True
        self._send(handle, ErrorMessage(code=code, message=detail[:2000]))
        return False

    def _crashed(self, handle: SpokeHandle, request_id: int, truncated: bool) -> ErrorMessage:
        how = "closed its channel in the middle of a message" if truncated else "stopped"
        on_its_own = handle.stop_reason is None  # not already stopped by the hub
        self.launcher.wait_exit(handle.process, timeout=1.0)  # let it finish dying: a truer reason
        exit = self.stop(handle, f"spoke {how}")
        message = f"{handle.app.name} {how}: {exit}"
        if on_its_own:
            self.failed(Failure("spoke_crash", message))
        return ErrorMessage(id=request_id, code="app_error", message=message)
