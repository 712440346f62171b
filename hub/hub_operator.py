"""The hub operator: carries out a plan with spokes, and serves what spokes ask for.

Step 3 of the query flow: keep only installed functionalities, group dependent
steps; no step -> the vanilla spoke (no app, the hub's memory); one group ->
exec permission for its first app, then that app's spoke handles the query;
several groups -> the routing spoke (no app) calls each app through the hub.

While a spoke works, its requests arrive here (through the broker, which knows
the sender by its socket): LLM calls, its own memory, the user's remembered
details (data permission), and other apps (exec permission at probe or call,
collab permission before another app's answer is handed over). Nothing a spoke
sends can name another spoke's memory or skip a permission.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import jsonschema

from helpers.isc.control import SpokeProfile
from helpers.isc.messages import (
    AppRequest, AppResponse, ErrorMessage, FinalResponse, FunctionalityDenialResponse, FunctionProbeRequest,
    FunctionProbeResponse, LLMRequest, LLMResponse, MemoryRequest, MemoryResponse, Message,
    NoFunctionalityResponse, PlanStep,
)
from helpers.memory.extraction import summarizer
from helpers.memory.store import MemoryStore
from helpers.permission.prompt import PermissionManager, PermissionRequest
from helpers.permission.store import pair_key
from helpers.sandbox.app_spec import AppSpec
from helpers.tools.tool_importer import ToolImporter
from helpers.utilities.errors import LLMError, MemoryUnavailable, SecGPTError
from hub.broker import SpokeBroker, SpokeHandle
from hub.llm_broker import LLMBroker
from hub.planner import RESULT_REF, group_steps

ROUTING, VANILLA = "routing", "vanilla"

Emit = Callable[[str, str], None]


@dataclass
class Execution:
    text: str | None
    route: str                      # "vanilla", "routing" or the app that handled the query
    refused: str | None = None      # the app whose exec permission the user refused
    dropped: list[str] = field(default_factory=list)


class HubOperator:
    def __init__(self, broker: SpokeBroker, importer: ToolImporter, permissions: PermissionManager,
                 memory: MemoryStore, llm: LLMBroker, user: str, emit: Emit | None = None) -> None:
        self.broker, self.importer, self.permissions = broker, importer, permissions
        self.memory, self.llm, self.user = memory, llm, user
        self.emit = emit or (lambda kind, text: None)
        self.spokes: dict[str, SpokeHandle] = {}
        broker.handlers.update({"llm_request": self._serve_llm, "memory_request": self._serve_memory,
                                "function_probe_request": self._serve_probe, "app_request": self._serve_app})

    # --- carrying out a plan ----------------------------------------------------------------------
    def execute(self, query: str, steps: list[PlanStep]) -> Execution:
        # Approvals last one query, for every spoke: a callee's code must not reuse what the
        # user allowed when that app was the main spoke of an earlier query.
        for handle in self.spokes.values():
            handle.expected, handle.approved, handle.refused, handle.received = frozenset(), {}, set(), []
            handle.planned = ()
        known = [s for s in steps if self.importer.functionality(s.name)]
        dropped = [s.name for s in steps if not self.importer.functionality(s.name)]
        if dropped:
            self.emit("plan", f"dropped steps for functionalities that are not installed: {', '.join(dropped)}")
        if not known:
            return self._run(VANILLA, query, [], dropped)
        groups = group_steps(known)
        if len(groups) > 1 and len({self.importer.owner[s.name] for s in known}) > 1:
            self.emit("route", f"{len(groups)} independent groups: the routing spoke handles the query")
            return self._run(ROUTING, query, known, dropped)
        app = self.importer.owner[known[0].name]
        names = ", ".join(s.name for s in known)
        decision = self.permissions.check(PermissionRequest(
            self.user, app, "exec", f"handle your request with {app} (plan: {names})", expected=True))
        if not decision.allowed:
            return Execution(None, app, refused=app, dropped=dropped)
        return self._run(app, query, known, dropped)

    def _guard_plan_data(self, target: str, query: str, steps: list[PlanStep]) -> list[PlanStep]:
        """The plan is written by an LLM that saw the chat history: a step's input may carry
        details the user told earlier (not in this query). Those are user data handed to an
        app, so they pass a data permission; refused, they are withheld from the plan."""
        entities = self.memory.entities("hub") if steps else {}
        known = {p for value in entities.values() for p in _phrases(value) if p.lower() not in query.lower()}
        text = json.dumps([s.input for s in steps], ensure_ascii=False).lower()
        found = sorted(v for v in known if v.lower() in text)
        if not found:
            return steps
        decision = self.permissions.check(PermissionRequest(
            self.user, target, "data", f"the plan hands {target} details you gave earlier: {'; '.join(found)}",
            expected=False))
        if decision.allowed:
            return steps
        pattern = re.compile("|".join(re.escape(v) for v in sorted(found, key=len, reverse=True)), re.IGNORECASE)
        return [s.model_copy(update={"input": _redact(s.input, pattern)}) for s in steps]

    def _run(self, name: str, query: str, steps: list[PlanStep], dropped: list[str]) -> Execution:
        if name != VANILLA:
            try:
                steps = self._guard_plan_data(name, query, steps)
            except MemoryUnavailable as exc:
                return Execution(f"Sorry, {exc}.", name, dropped=dropped)
        try:
            handle = self._spoke(name)
        except SecGPTError as exc:
            return Execution(f"Sorry, {name} could not be started: {exc}", name, dropped=dropped)
        handle.expected = frozenset(s.name for s in steps)  # approvals were reset by execute()
        handle.planned = tuple(steps)
        outcome = self.broker.query(handle, query, steps, sorted(handle.expected))
        if isinstance(outcome, FinalResponse):
            return Execution(outcome.text, name, dropped=dropped)
        reason = getattr(outcome, "message", None) or getattr(outcome, "reason", None) or outcome.type
        return Execution(f"Sorry, I could not complete this: {reason}", name, dropped=dropped)

    def _spoke(self, name: str) -> SpokeHandle:
        handle = self.spokes.get(name)
        if handle is not None and handle.alive:
            return handle
        if name in (ROUTING, VANILLA):
            others = self.importer.all_functionalities() if name == ROUTING else []
            spec = AppSpec(name=name, module="", profile=SpokeProfile(kind=name, app=name, others=others))
        else:
            spec = self.importer.app_spec(name)
        handle = self.broker.start(spec)
        report = handle.process.ready.sandbox if handle.process.ready else None
        self.emit("spoke", f"started spoke {name} (pid {handle.process.pid}, uid {report.uid if report else '?'}, "
                           f"landlock ABI {report.landlock_abi if report else '?'})")
        self.spokes[name] = handle
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
            reply = self.llm.complete(request.messages, request.tools, purpose=handle.app.name)
        except LLMError as exc:
            return ErrorMessage(id=request.id, code="llm_error", message=str(exc))
        return LLMResponse(id=request.id, message=reply)

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
                self.memory.append(ns, items, summarize=summarizer(lambda m: self.llm.invoke(m, purpose="memory")))
                return MemoryResponse(id=request.id)
            if request.kind == "summary" and request.op == "load":
                return MemoryResponse(id=request.id, value=self.memory.summary(ns))
            if request.op == "clear":
                self.memory.clear(ns)
                return MemoryResponse(id=request.id)
            return ErrorMessage(id=request.id, code="invalid_request",
                                message=f"{request.op} {request.kind} is not offered to spokes")
        except MemoryUnavailable as exc:
            return ErrorMessage(id=request.id, code="unavailable", message=str(exc))

    def _share_entities(self, handle: SpokeHandle, request: MemoryRequest) -> Message:
        if request.op != "load":
            return ErrorMessage(id=request.id, code="permission_denied",
                                message="spokes cannot change the user's remembered details")
        entities = self.memory.entities("hub")
        if not entities:
            return MemoryResponse(id=request.id, value={})
        decision = self.permissions.check(PermissionRequest(
            self.user, handle.app.name, "data",
            f"{handle.app.name} asks for your remembered details: {', '.join(sorted(entities))}", expected=False))
        if not decision.allowed:
            return ErrorMessage(id=request.id, code="permission_denied",
                                message=f"the user did not allow sharing their details with {handle.app.name}")
        return MemoryResponse(id=request.id, value=entities)

    def _permission_key(self, handle: SpokeHandle, target: str) -> str:
        caller = handle.app.name
        return target if caller == ROUTING else pair_key(caller, target)

    def _exec_allowed(self, handle: SpokeHandle, target: str, functionality: str, use: bool,
                      request: dict | None = None) -> bool:
        """Exec permission for ``functionality`` of ``target``, asked once per query: a planned
        functionality stays approved for the query, for calls with the planned inputs; an
        unplanned one, or a planned one called with other inputs (an injected instruction
        reusing a planned functionality), for that one call (``use``: this is that call,
        ``request`` its input). A refusal of the functionality stands for the rest of the query."""
        if functionality in handle.refused:
            return False
        off_plan = (request is not None and functionality in handle.expected
                    and not as_planned(handle.planned, functionality, request))
        if functionality in handle.approved and not off_plan:
            if use and not handle.approved[functionality]:
                del handle.approved[functionality]
            return True
        expected = functionality in handle.expected and not off_plan
        caller = handle.app.name
        who = "the coordinator" if caller == ROUTING else caller
        details = f"{who} wants to run {functionality} of {target}"
        if off_plan:
            details += f", not as planned: {json.dumps(request, ensure_ascii=False)[:300]}"
        decision = self.permissions.check(PermissionRequest(
            self.user, self._permission_key(handle, target), "exec", details, expected=expected))
        if not decision.allowed:
            if not off_plan:
                handle.refused.add(functionality)
        elif expected or not use:
            handle.approved[functionality] = expected
        return decision.allowed

    def _serve_probe(self, handle: SpokeHandle, request: FunctionProbeRequest) -> Message:
        f = self.importer.functionality(request.functionality)
        if f is None:
            return NoFunctionalityResponse(id=request.id, functionality=request.functionality)
        if f.app != handle.app.name and not self._exec_allowed(handle, f.app, f.name, use=False):
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
        # Checked here again: a spoke may skip the probe, never the permission.
        if not self._exec_allowed(handle, f.app, f.name, use=True, request=dict(request.request)):
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
        target.expected, target.approved, target.refused, target.received = frozenset(), {}, set(), []
        target.planned = ()
        if caller == ROUTING and (denial := self._routing_flow_refused(handle, f, request)):
            return denial
        self.emit("call", f"{caller} -> {f.app}.{f.name}")
        outcome = self.broker.call(target, f.name, dict(request.request))
        if not isinstance(outcome, AppResponse):
            detail = getattr(outcome, "message", None) or getattr(outcome, "reason", None) or outcome.type
            return ErrorMessage(id=request.id, code="app_error", message=f"{f.name} failed: {detail}")
        try:
            jsonschema.validate(outcome.response, f.response_schema)
        except jsonschema.ValidationError as exc:
            return ErrorMessage(id=request.id, code="app_error",
                                message=f"{f.name} answered outside its specification: {exc.message}")
        if caller != ROUTING:
            preview = json.dumps(outcome.response, ensure_ascii=False)[:300]
            decision = self.permissions.check(PermissionRequest(
                self.user, self._permission_key(handle, f.app), "collab",
                f"{f.app} answers {caller}: {preview}",
                expected=as_planned(handle.planned, f.name, dict(request.request))))
            if not decision.allowed:
                return FunctionalityDenialResponse(id=request.id, functionality=f.name,
                                                   reason=f"the user did not allow sharing {f.app}'s answer")
        handle.received.append((f.app, json.dumps(outcome.response, ensure_ascii=False)))
        return AppResponse(id=request.id, functionality=f.name, response=outcome.response)

    def _routing_flow_refused(self, handle: SpokeHandle, f, request: AppRequest) -> Message | None:
        """The routing spoke is not an app, so its calls have no collab step; but once an app
        has answered it, that answer is in its LLM's context and may be forwarded. When a
        request carries data from an earlier answer of another app, the user is asked (collab
        B->C), expected only if the plan says this step uses a result of B's (``<result_k>``)."""
        sent = json.dumps(request.request, ensure_ascii=False)
        steps = handle.planned
        declared = {self.importer.owner.get(steps[int(k) - 1].name)
                    for s in steps if s.name == f.name
                    for k in RESULT_REF.findall(json.dumps(s.input)) if 0 < int(k) <= len(steps)}
        for source, answer in handle.received:
            if source == f.app or not _carries(answer, sent):
                continue
            decision = self.permissions.check(PermissionRequest(
                self.user, pair_key(source, f.app), "collab",
                f"{source}'s answer would be passed to {f.name}: {sent[:300]}", expected=source in declared))
            if not decision.allowed:
                return FunctionalityDenialResponse(id=request.id, functionality=f.name,
                                                   reason=f"the user did not allow passing {source}'s answer to {f.app}")
        return None


def as_planned(steps, name: str, request: dict) -> bool:
    """Is this call one the plan foresees: a step for ``name`` whose every planned input value
    matches the request? A value built from an earlier result (``<result_k>``) matches anything;
    inputs the plan left out are free."""
    return any(s.name == name and all(_same(request.get(k), v) for k, v in s.input.items()) for s in steps)


def _same(actual, planned) -> bool:
    if isinstance(planned, str) and RESULT_REF.search(planned):
        return True
    if isinstance(planned, str) and isinstance(actual, str):
        return " ".join(planned.split()).casefold() == " ".join(actual.split()).casefold()
    if isinstance(planned, dict):
        return isinstance(actual, dict) and all(_same(actual.get(k), v) for k, v in planned.items())
    if isinstance(planned, list):
        return (isinstance(actual, list) and len(actual) == len(planned)
                and all(_same(a, p) for a, p in zip(actual, planned)))
    return actual == planned


def _carries(answer: str, request: str) -> bool:
    """Does ``request`` contain data from ``answer``? Any run of three words, or any distinctive
    token (with a digit or '@', 4+ characters), of the answer found in the request."""
    words = re.findall(r"[\w@.$-]+", answer.lower())
    text = request.lower()
    if any(len(w) >= 4 and re.search(r"[\d@]", w) and w in text for w in words):
        return True
    return any(" ".join(words[i:i + 3]) in text for i in range(len(words) - 2))


def _phrases(value: str) -> set[str]:
    """What may identify a remembered detail in other words: the value, each comma-separated
    part, and each pair of adjacent words of a part ("heart surgery" of "recent heart surgery")."""
    found: set[str] = set()
    for part in [value, *value.split(",")]:
        part = part.strip()
        if len(part) >= 4:
            found.add(part)
        words = part.split()
        found.update(f"{a} {b}" for a, b in zip(words, words[1:]) if len(a) + len(b) >= 8)
    return found


def _redact(value, pattern: re.Pattern):
    if isinstance(value, str):
        return pattern.sub("[withheld]", value)
    if isinstance(value, list):
        return [_redact(v, pattern) for v in value]
    if isinstance(value, dict):
        return {k: _redact(v, pattern) for k, v in value.items()}
    return value


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
