"""Runs in: hub.

The hub operator: carries out a plan with spokes, and serves what spokes ask for.

Step 3 of the query flow: keep only installed functionalities, group dependent
steps; no step -> the vanilla spoke (no app, the hub's memory); one group ->
exec permission for its first app, then that app's spoke handles the query;
several groups -> the routing spoke (no app) calls each app through the hub.

While a spoke works, its requests arrive here (through the broker, which knows
the sender by its socket): LLM calls, its own memory, the user's remembered
details (data permission), and other apps (exec permission at probe or call,
collab permission before another app's answer is handed over). Nothing a spoke
sends can name another spoke's memory or skip a permission.

Every question is decided by the policy (``hub.policy``: pure, one place): the
operator carries out its ``Allow``/``Deny``/``Ask`` and tells it the user's answers,
which it keeps per spoke for the query (``SpokeState``). The permission manager lets a
refusal of what the plan did not expect stand for the rest of the query, and caps the
questions per query (``begin_query``).

What broke during the query is kept by the broker (``failures``), including what a
spoke papered over (an LLM call it was refused by a failure, a callee that died):
the first one is the query's ``failure``, which the answer reports.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

import jsonschema

from helpers.isc.control import SpokeProfile
from helpers.isc.messages import (
    AppRequest,
    AppResponse,
    ChatMessage,
    ErrorMessage,
    FinalResponse,
    FunctionalityDenialResponse,
    FunctionProbeRequest,
    FunctionProbeResponse,
    LLMRequest,
    LLMResponse,
    MemoryRequest,
    MemoryResponse,
    Message,
    NoFunctionalityResponse,
    PlanStep,
)
from helpers.llm.client import LLMClient, prompt_bytes
from helpers.memory.extraction import summarizer
from helpers.memory.store import MemoryStore
from helpers.permission.prompt import PermissionManager
from helpers.sandbox.app_spec import AppSpec
from helpers.tools.tool_importer import ToolImporter
from helpers.utilities.errors import LLMError, MemoryUnavailable, SecGPTError
from helpers.utilities.failures import Failure, failure_of
from hub.broker import SpokeBroker, SpokeHandle, busy_message, describe
from hub.destinations import known_keys
from hub.effects import SideEffects
from hub.plan import group_steps, renumber
from hub.plan_runner import run_plan
from hub.policy import ROUTING, VANILLA, Allow, Decision, Deny, FaithfulPolicy, Policy, QueryContext, SpokeState
from hub.prefetch import Prefetch

Emit = Callable[[str, str], None]
# LLM replies in a row whose every call of the spoke's own app was refused, before the last one is
# handed to the spoke as it is (without those calls).
MAX_REFUSED_TURNS = 4


@dataclass
class Execution:
    text: str | None
    route: str                      # "vanilla", "routing" or the app that handled the query
    refused: str | None = None      # the app whose exec permission the user refused
    dropped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # told to the user after the answer


class HubOperator:
    def __init__(self, broker: SpokeBroker, importer: ToolImporter, permissions: PermissionManager,
                 memory: MemoryStore, llm: LLMClient, user: str, emit: Emit | None = None,
                 policy: Policy | None = None) -> None:
        self.broker, self.importer, self.permissions = broker, importer, permissions
        self.memory, self.llm, self.user = memory, llm, user
        self.emit = emit or (lambda kind, text: None)
        self.spokes: dict[str, SpokeHandle] = {}
        self.states: dict[str, SpokeState] = {}  # per spoke, for the query in progress
        self.policy = policy or FaithfulPolicy(importer.owner if importer else {}, SideEffects(importer))
        self.ctx = QueryContext(user)
        self.prefetch: Prefetch | None = None  # a call started ahead for a spoke (hub.prefetch), this query only
        self.prefetches_started = self.prefetches_used = 0
        broker.handlers.update({"llm_request": self._serve_llm, "memory_request": self._serve_memory,
                                "function_probe_request": self._serve_probe, "app_request": self._serve_app})
        broker.budgets.notify = lambda text: self.emit("budget", text)  # an overrun: one line for the user
        llm.audit = llm.audit or broker.audit  # an LLM failure in full (redacted) goes to the audit log only

    # --- carrying out a plan ----------------------------------------------------------------------
    def begin_query(self) -> None:
        """A new user query (re-plans of it included): refusals, the count of questions and the
        failures restart."""
        self.permissions.begin_query()
        self.broker.failures.clear()

    @property
    def failure(self) -> Failure | None:
        """The first thing that broke in this query, if any."""
        return self.broker.failures[0] if self.broker.failures else None

    def failed(self, exc: BaseException) -> None:
        self.broker.failed(failure_of(exc))

    def execute(self, query: str, steps: list[PlanStep]) -> Execution:
        self.ctx = QueryContext(self.user, query, self._user_destinations(query))
        # Approvals last one query, for every spoke: a callee's code must not reuse what the
        # user allowed when that app was the main spoke of an earlier query.
        for state in self.states.values():
            state.begin()
        kept = [i for i, s in enumerate(steps) if self.importer.functionality(s.name)]
        known = renumber([steps[i] for i in kept], kept)
        dropped = [s.name for i, s in enumerate(steps) if i not in kept]
        if dropped:
            self.emit("plan", f"dropped steps for functionalities that are not installed: {', '.join(dropped)}")
        if not known:
            return self._run(VANILLA, query, [], dropped)
        if self.policy.name == "strict":  # the hub runs the plan itself (hub.plan_runner)
            with self.broker.one_query():
                return run_plan(self, query, known, dropped)
        groups = group_steps(known)
        if len(groups) > 1 and len({self.importer.owner[s.name] for s in known}) > 1:
            self.emit("route", f"{len(groups)} independent groups: the routing spoke handles the query")
            return self._run(ROUTING, query, known, dropped)
        app = self.importer.owner[known[0].name]
        approved, notes = self._approve_plan(app, known)
        if approved is None:
            return Execution(None, app, refused=app, dropped=dropped)
        run = self._run(app, query, approved, dropped)
        run.notes += notes
        return run

    def _approve_plan(self, app: str, steps: list[PlanStep]) -> tuple[list[PlanStep] | None, list[str]]:
        """Exec permission for ``app`` to handle the query (``ask_plan``): the steps it may run,
        renumbered, or None when nothing of ``app``'s may run."""
        left_out, notes = self.ask_plan(app, steps)
        if left_out is None:
            return None, []
        kept = [i for i in range(len(steps)) if i not in left_out]
        return renumber([steps[i] for i in kept], kept), notes

    def ask_plan(self, app: str, steps: list[PlanStep]) -> tuple[list[int] | None, list[str]]:
        """The plan review for ``app`` (``Policy.review_plan``): one question listing every planned
        step with its inputs, then one per step of ``app``'s naming a destination the user never
        gave. The steps left out (None: nothing of ``app``'s may run), and what the user is told."""
        review = self.policy.review_plan(self.ctx, app, steps)
        if review.first is not None and not self.permissions.check(review.first.request).allowed:
            return None, []
        left_out = [i for i, ask in review.each if not self.permissions.check(ask.request).allowed]
        kept, notes = self.policy.plan_outcome(review, True, left_out)
        return (None, []) if kept is None else (left_out, notes)

    def _user_destinations(self, query: str) -> frozenset[str]:
        """Destinations the user gave: in this request, or among the details the hub remembers
        (extracted from the user's own messages only)."""
        try:
            entities = self.memory.entities("hub")
        except MemoryUnavailable as exc:
            self.failed(exc)
            entities = {}  # fewer known destinations: more questions, never fewer
        return known_keys([query, *(str(v) for v in entities.values())])

    def guard_plan_data(self, target: str, steps: list[PlanStep],
                        entities: dict[str, str] | None = None) -> list[PlanStep]:
        """Details the user told earlier (``entities``: read here unless given), in a plan's
        inputs, pass a data permission; refused, they are withheld from the plan
        (``Policy.remembered_in_plan``)."""
        if entities is None:
            entities = self.memory.entities("hub") if steps else {}
        found = self.policy.remembered_in_plan(self.ctx, target, steps, entities)
        if found is None or self.permissions.check(found.ask.request).allowed:
            return steps
        return self.policy.withhold(steps, found.found)

    def _run(self, name: str, query: str, steps: list[PlanStep], dropped: list[str]) -> Execution:
        if name != VANILLA:
            try:
                steps = self.guard_plan_data(name, steps)
            except MemoryUnavailable as exc:
                self.failed(exc)
                return Execution(f"Sorry, {exc}.", name, dropped=dropped)
        try:
            handle = self._spoke(name)
        except SecGPTError as exc:
            return Execution(f"Sorry, {name} could not be started: {exc}", name, dropped=dropped)
        state = self.states[name]
        state.begin(steps)
        outcome = self.broker.query(handle, query, steps, sorted(state.expected))
        if isinstance(outcome, FinalResponse):
            return Execution(outcome.text, name, dropped=dropped)
        return Execution(f"Sorry, I could not complete this: {describe(outcome)}", name, dropped=dropped)

    def _spoke(self, name: str) -> SpokeHandle:
        handle = self.spokes.get(name)
        if handle is not None and handle.alive:
            return handle
        try:
            if name in (ROUTING, VANILLA):
                others = self.importer.all_functionalities() if name == ROUTING else []
                spec = AppSpec(name=name, module="", profile=SpokeProfile(kind=name, app=name, others=others))
            else:
                spec = self.importer.app_spec(name)
            handle = self.broker.start(spec)
        except SecGPTError as exc:  # its start failed (spoke_crash), or the hub could not start it (internal)
            self.failed(exc)
            raise
        report = handle.process.sandbox  # the report sent before any app code ran
        view = ("no private view or namespaces (fallback)" if not report.mount_namespace
                else "own view and namespaces" + (" in a user namespace" if report.user_namespace else ""))
        self.emit("spoke", f"started spoke {name} (pid {handle.process.pid}, uid {report.uid}, "
                           f"landlock ABI {report.landlock_abi}, {view})")
        self.spokes[name] = handle
        self.states[name] = SpokeState(name)  # a new spoke: nothing approved or received yet
        return handle

    def stop_all(self, reason: str) -> None:
        for handle in list(self.spokes.values()):
            if handle.alive:
                self.broker.stop(handle, reason)
        self.spokes.clear()

    # --- what spokes ask for ---------------------------------------------------------------------------
    @staticmethod
    def namespace(handle: SpokeHandle) -> str:
        name = handle.app.name
        return "hub" if name == VANILLA else ROUTING if name == ROUTING else f"app:{name}"

    def _serve_llm(self, handle: SpokeHandle, request: LLMRequest) -> Message:
        self.emit("llm", f"{handle.app.name} asks the LLM ({len(request.messages)} messages, "
                         f"{len(request.tools)} tools)")
        try:
            reply = self._prefetched(handle, request) or self.llm.complete(request.messages, request.tools,
                                                                           purpose=handle.app.name)
        except LLMError as exc:
            self.failed(exc)  # whatever the spoke answers after this, the LLM failed
            return ErrorMessage(id=request.id, code="llm_error", message=str(exc))
        messages = list(request.messages)
        for _ in range(MAX_REFUSED_TURNS):
            checked, refused = self._check_own_calls(handle, reply)
            if not refused or checked.tool_calls:
                return LLMResponse(id=request.id, message=checked)
            # Every call refused: the LLM is told, as a spoke's tool loop would tell it, and goes on.
            messages += [reply, *(ChatMessage(role="tool", content=_refusal(c.name), tool_call_id=c.id)
                                  for c in refused)]
            try:
                reply = self.llm.complete(messages, request.tools, purpose=handle.app.name)
            except LLMError as exc:
                self.failed(exc)
                return ErrorMessage(id=request.id, code="llm_error", message=str(exc))
        return LLMResponse(id=request.id, message=self._check_own_calls(handle, reply)[0])

    def start_prefetch(self, spoke: str, messages: list[ChatMessage]) -> None:
        """Start now the LLM call ``spoke`` is expected to ask for (``hub.prefetch``); this query only."""
        self.prefetch = Prefetch(self.llm, spoke, messages)
        self.prefetches_started += 1

    def _prefetched(self, handle: SpokeHandle, request: LLMRequest) -> ChatMessage | None:
        """The reply to a call started ahead for exactly this request, if there is one; charged to the
        spoke's budget now, as the call itself would have been."""
        if self.prefetch is None:
            return None
        reply = self.prefetch.take(handle.app.name, request.messages, request.tools)
        if reply is None:
            return None
        if self.llm.charge is not None:
            self.llm.charge(prompt_bytes(request.messages, request.tools))
        self.prefetches_used += 1
        self.emit("llm", f"{handle.app.name}: the reply started beside the planner is used")
        return reply

    def _check_own_calls(self, handle: SpokeHandle, reply: ChatMessage) -> tuple[ChatMessage, list]:
        """Each call the reply asks of the spoke's own app is put to the policy here, by the hub,
        before the spoke sees it (``Policy.own_call``); a refused call is taken out of the reply,
        and the reply says so. (Calls of other apps come back as requests and are checked then.)
        Returns the reply as the spoke may see it, and the calls refused."""
        app = handle.app.name
        own = [c for c in reply.tool_calls if self.importer.owner.get(c.name) == app]
        if not own:
            return reply, []
        state = self.states[app]
        refused = [c for c in own if not self._decide(state, self.policy.own_call(self.ctx, state, c.name,
                                                                                    dict(c.args)))]
        if not refused:
            return reply, []
        note = " ".join(_refusal(name) for name in dict.fromkeys(c.name for c in refused))
        return reply.model_copy(update={"tool_calls": [c for c in reply.tool_calls if c not in refused],
                                        "content": f"{reply.content}\n({note})".strip()}), refused

    def _serve_memory(self, handle: SpokeHandle, request: MemoryRequest) -> Message:
        ns = self.namespace(handle)
        try:
            if request.kind == "entities":
                return self._share_entities(handle, request)
            if request.kind == "history" and request.op == "load":
                return MemoryResponse(id=request.id, value=self.memory.context(ns))
            if request.kind == "history" and request.op == "save":
                items = _chat_items(request.value)
                if items is None:
                    return ErrorMessage(id=request.id, code="invalid_request",
                                        message="history to save must be a list of {role, content} messages")
                if handle.app.name == VANILLA:
                    return MemoryResponse(id=request.id)  # the hub records its own turns (Hub._remember)
                self.memory.append(ns, items, summarize=summarizer(self.llm.model_for("memory")))
                return MemoryResponse(id=request.id)
            if request.kind == "summary" and request.op == "load":
                return MemoryResponse(id=request.id, value=self.memory.summary(ns))
            if request.op == "clear":
                self.memory.clear(ns)
                return MemoryResponse(id=request.id)
            return ErrorMessage(id=request.id, code="invalid_request",
                                message=f"{request.op} {request.kind} is not offered to spokes")
        except MemoryUnavailable as exc:
            self.failed(exc)
            return ErrorMessage(id=request.id, code="unavailable", message=str(exc))

    def _share_entities(self, handle: SpokeHandle, request: MemoryRequest) -> Message:
        if request.op != "load":
            return ErrorMessage(id=request.id, code="permission_denied",
                                message="spokes cannot change the user's remembered details")
        entities = self.memory.entities("hub")
        if not self._decide(self.states[handle.app.name], self.policy.share_entities(self.ctx, handle.app.name,
                                                                                      entities)):
            return ErrorMessage(id=request.id, code="permission_denied",
                                message=f"the user did not allow sharing their details with {handle.app.name}")
        return MemoryResponse(id=request.id, value=entities or {})

    def _decide(self, state: SpokeState, decision: Decision) -> bool:
        """Carry out the policy's decision: a question is put to the permission manager, and the
        answer kept in ``state`` (``Policy.record``)."""
        if isinstance(decision, Allow):
            return True
        if isinstance(decision, Deny):
            return False
        allowed = self.permissions.check(decision.request).allowed
        self.policy.record(state, decision, allowed)
        return allowed

    def _serve_probe(self, handle: SpokeHandle, request: FunctionProbeRequest) -> Message:
        f = self.importer.functionality(request.functionality)
        if f is None:
            return NoFunctionalityResponse(id=request.id, functionality=request.functionality)
        state = self.states[handle.app.name]
        if f.app != handle.app.name and not self._decide(state, self.policy.probe(self.ctx, state, f.app, f.name)):
            return FunctionalityDenialResponse(id=request.id, functionality=f.name,
                                               reason=f"the user did not allow using {f.app}")
        return FunctionProbeResponse(id=request.id, functionality=f.name, request_schema=f.request_schema)

    def _serve_app(self, handle: SpokeHandle, request: AppRequest) -> Message:
        f = self.importer.functionality(request.functionality)
        if f is None:
            return NoFunctionalityResponse(id=request.id, functionality=request.functionality)
        caller = handle.app.name
        if f.app == caller:
            return ErrorMessage(id=request.id, code="invalid_request",
                                message=f"{f.name} belongs to {caller}: run it directly")
        callee = self.spokes.get(f.app)
        if callee is not None and callee.busy:
            # Back into an app at work in this chain (A -> B -> A): it cannot be served, so it is
            # refused before the user is asked anything or the callee's state for the query is touched.
            return ErrorMessage(id=request.id, code="unavailable", message=busy_message(f.app))
        # Checked here again: a spoke may skip the probe, never the permission.
        state = self.states[caller]
        step, decision = self.policy.call(self.ctx, state, f.app, f.name, dict(request.request))
        if not self._decide(state, decision):
            return FunctionalityDenialResponse(id=request.id, functionality=f.name,
                                               reason=f"the user did not allow using {f.app}")
        try:
            jsonschema.validate(request.request, f.request_schema)
        except jsonschema.ValidationError as exc:
            return ErrorMessage(id=request.id, code="invalid_request",
                                message=f"request for {f.name} does not match its specification: {exc.message}")
        try:
            target = self._spoke(f.app)
        except SecGPTError as exc:
            return ErrorMessage(id=request.id, code="unavailable", message=str(exc))
        # A callee runs one functionality for someone else: nothing is expected of it, and any
        # call it makes in turn is asked afresh.
        self.states[f.app].begin()
        if step is not None:
            state.used.add(step)
        for ask in self.policy.flows(self.ctx, state, f.app, f.name, dict(request.request), step):
            if not self._decide(state, ask):
                return FunctionalityDenialResponse(id=request.id, functionality=f.name,
                                                   reason=f"the user did not allow passing {ask.source}'s answer "
                                                          f"to {f.app}")
        self.emit("call", f"{caller} -> {f.app}.{f.name}")
        outcome = self.broker.call(target, f.name, dict(request.request))
        if not isinstance(outcome, AppResponse):
            return ErrorMessage(id=request.id, code="app_error", message=f"{f.name} failed: {describe(outcome)}")
        try:
            jsonschema.validate(outcome.response, f.response_schema)
        except jsonschema.ValidationError as exc:
            return ErrorMessage(id=request.id, code="app_error",
                                message=f"{f.name} answered outside its specification: {exc.message}")
        if not self._decide(state, self.policy.handoff(self.ctx, state, f.app, f.name, outcome.response, step)):
            return FunctionalityDenialResponse(id=request.id, functionality=f.name,
                                               reason=f"the user did not allow sharing {f.app}'s answer")
        state.received.append((f.app, json.dumps(outcome.response, ensure_ascii=False)))
        return AppResponse(id=request.id, functionality=f.name, response=outcome.response)


def _refusal(name: str) -> str:
    return f"SecGPT did not run {name}: the call is not in the plan for the user's request, and was not allowed."


def _chat_items(value) -> list[dict] | None:
    if not isinstance(value, list) or len(value) > 64:
        return None
    items = []
    for item in value:
        if not (isinstance(item, dict) and item.get("role") in ("user", "assistant")
                and isinstance(item.get("content"), str)):
            return None
        items.append({"role": item["role"], "content": item["content"]})
    return items
