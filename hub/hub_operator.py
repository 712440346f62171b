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

What counts as expected is the plan, read with suspicion: the planner is an LLM
that reads text apps wrote, so a planned input naming a destination the user never
gave (``hub.destinations``) is not expected; the exec dialog shows every planned
step with its inputs. A call the plan did not expect is asked at the call, with its
input; so is every call of a functionality with side effects (``hub.effects``). The
permission manager lets a refusal of what the plan did not expect stand for the rest
of the query, and caps the questions per query (``begin_query``).

What broke during the query is kept by the broker (``failures``), including what a
spoke papered over (an LLM call it was refused by a failure, a callee that died):
the first one is the query's ``failure``, which the answer reports.

Runs in: hub.
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
from helpers.permission.prompt import PermissionManager, PermissionRequest, shown
from helpers.permission.store import pair_key
from helpers.sandbox.app_spec import AppSpec
from helpers.tools.tool_importer import ToolImporter
from helpers.utilities.errors import LLMError, MemoryUnavailable, SecGPTError
from helpers.utilities.failures import Failure, failure_of
from hub.broker import SpokeBroker, SpokeHandle
from hub.destinations import Destination, known_keys, unknown
from hub.effects import SideEffects
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
    notes: list[str] = field(default_factory=list)  # told to the user after the answer


class HubOperator:
    def __init__(self, broker: SpokeBroker, importer: ToolImporter, permissions: PermissionManager,
                 memory: MemoryStore, llm: LLMBroker, user: str, emit: Emit | None = None) -> None:
        self.broker, self.importer, self.permissions = broker, importer, permissions
        self.memory, self.llm, self.user = memory, llm, user
        self.emit = emit or (lambda kind, text: None)
        self.spokes: dict[str, SpokeHandle] = {}
        self.query = ""
        self.side_effects = SideEffects(importer)
        self._known: frozenset[str] = frozenset()  # destinations the user gave (request, remembered details)
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
        self.query = query  # what the user said is not another app's data (routing flow check)
        self._known = self._user_destinations(query)
        # Approvals last one query, for every spoke: a callee's code must not reuse what the
        # user allowed when that app was the main spoke of an earlier query.
        for handle in self.spokes.values():
            handle.begin()
        kept = [i for i, s in enumerate(steps) if self.importer.functionality(s.name)]
        known = renumber([steps[i] for i in kept], kept)
        dropped = [s.name for i, s in enumerate(steps) if i not in kept]
        if dropped:
            self.emit("plan", f"dropped steps for functionalities that are not installed: {', '.join(dropped)}")
        if not known:
            return self._run(VANILLA, query, [], dropped)
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
        """Exec permission for ``app`` to handle the query, its dialog listing every planned step
        with its inputs. The app's own steps run in its spoke unseen by the hub, so each one that
        names a destination the user never gave is asked on its own, not expected; refused, it
        is left out of the plan (the others still run). None when nothing of ``app``'s may run."""
        suspects = {i: found for i, s in enumerate(steps) if (found := unknown(s.input, self._known))}
        own = [i for i, s in enumerate(steps) if self.importer.owner[s.name] == app]
        fine = [i for i in own if i not in suspects]
        listing = "\n".join(self._step_line(i, s, app, suspects.get(i)) for i, s in enumerate(steps))
        if fine:
            decision = self.permissions.check(PermissionRequest(
                self.user, app, "exec", f"handle your request with {app}; the plan:\n{listing}", expected=True,
                functionalities=tuple(dict.fromkeys(steps[i].name for i in fine))))
            if not decision.allowed:
                return None, []
        left_out = []
        for i in (i for i in own if i in suspects):
            whole = "" if fine else f"\nThe whole plan:\n{listing}"  # not shown already
            decision = self.permissions.check(PermissionRequest(
                self.user, app, "exec", f"{app} would run step {i + 1} of the plan: {steps[i].name} "
                                        f"{shown(steps[i].input)}{whole}",
                expected=False, functionalities=(steps[i].name,), warning=_destination_warning(suspects[i])))
            if not decision.allowed:
                left_out.append(i)
        if left_out and not fine and len(left_out) == len(own):
            return None, []
        kept = [i for i in range(len(steps)) if i not in left_out]
        notes = [f"I left out step {i + 1} of the plan ({steps[i].name}): it names "
                 f"{', '.join(d.text for d in suspects[i])}, which you did not give, and it was not allowed."
                 for i in left_out]
        return renumber([steps[i] for i in kept], kept), notes

    def _step_line(self, i: int, step: PlanStep, app: str, suspect: list[Destination] | None) -> str:
        line = f"  {i + 1}. {step.name} {shown(step.input, 160)}"
        if suspect:
            line += f"  <- NOT expected: {', '.join(d.text for d in suspect)} is not in your request"
        owner = self.importer.owner[step.name]
        if owner != app:
            line += f"  (asked when {app} calls {owner})"
        elif suspect:
            line += " (asked next)"
        return line

    def _user_destinations(self, query: str) -> frozenset[str]:
        """Destinations the user gave: in this request, or among the details the hub remembers
        (extracted from the user's own messages only)."""
        try:
            entities = self.memory.entities("hub")
        except MemoryUnavailable as exc:
            self.failed(exc)
            entities = {}  # fewer known destinations: more questions, never fewer
        return known_keys([query, *(str(v) for v in entities.values())])

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
        return [s.model_copy(update={"input": _map_text(s.input, lambda text: pattern.sub("[withheld]", text))})
                for s in steps]

    def _run(self, name: str, query: str, steps: list[PlanStep], dropped: list[str]) -> Execution:
        if name != VANILLA:
            try:
                steps = self._guard_plan_data(name, query, steps)
            except MemoryUnavailable as exc:
                self.failed(exc)
                return Execution(f"Sorry, {exc}.", name, dropped=dropped)
        try:
            handle = self._spoke(name)
        except SecGPTError as exc:
            return Execution(f"Sorry, {name} could not be started: {exc}", name, dropped=dropped)
        handle.begin(tuple(steps))
        outcome = self.broker.query(handle, query, steps, sorted(handle.expected))
        if isinstance(outcome, FinalResponse):
            return Execution(outcome.text, name, dropped=dropped)
        reason = getattr(outcome, "message", None) or getattr(outcome, "reason", None) or outcome.type
        return Execution(f"Sorry, I could not complete this: {reason}", name, dropped=dropped)

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
            self.failed(exc)  # whatever the spoke answers after this, the LLM failed
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
            self.failed(exc)
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

    def _exec_allowed(self, handle: SpokeHandle, target: str, functionality: str,
                      request: dict | None = None, step: int | None = None) -> bool:
        """Exec permission for ``functionality`` of ``target``, from ``handle``'s spoke, at a probe
        (``request`` None: nothing runs, the input is not known yet) or at a call (``request`` its
        input, ``step`` the planned step it is, if any).

        * Expected (a planned step, as planned, naming no destination the user did not give):
          a read-only functionality is asked once, at the probe, listing its planned inputs, and
          stays approved for its planned steps in this query; one with side effects is asked at
          each call, with the input. Refused, the functionality is refused for the query.
        * Not expected (not in the plan; planned, but with other inputs or once more than
          planned; a planned input with an unknown destination): never asked at the probe, always
          at the call, with the input and the reason. (A user's refusal stands for the query:
          the permission manager does not ask the same again.)"""
        if functionality in handle.refused:
            return False
        who = "the coordinator" if handle.app.name == ROUTING else handle.app.name
        key = self._permission_key(handle, target)
        side_effects = self.side_effects(functionality)
        planned_inputs = [s.input for s in handle.planned if s.name == functionality]
        if request is None:
            if functionality not in handle.expected:
                return True  # asked at the call, with its input
            if side_effects or functionality in handle.approved:
                return True  # with side effects: asked at each call, when its input is known
            decision = self.permissions.check(PermissionRequest(
                self.user, key, "exec", f"{who} wants to run {functionality} of {target}, as planned: "
                                        f"{'; '.join(shown(i, 160) for i in planned_inputs)}",
                expected=True, functionalities=(functionality,)))
            if decision.allowed:
                handle.approved[functionality] = True
            else:
                handle.refused.add(functionality)
            return decision.allowed
        suspect = self._suspect(handle, step)
        details = f"{who} wants to run {functionality} of {target} with {shown(request)}"
        if step is not None and not suspect:
            if functionality in handle.approved and not side_effects:
                return True
            decision = self.permissions.check(PermissionRequest(
                self.user, key, "exec", details, expected=True, functionalities=(functionality,)))
            if not decision.allowed:
                handle.refused.add(functionality)
            elif not side_effects:
                handle.approved[functionality] = True
            return decision.allowed
        if suspect:
            warning = _destination_warning(suspect)
        elif planned_inputs:
            warning = (f"the plan has {functionality} with other inputs "
                       f"({'; '.join(shown(i, 120) for i in planned_inputs)}), or fewer times")
        else:
            warning = f"the plan for your request does not use {functionality}"
        return self.permissions.check(PermissionRequest(
            self.user, key, "exec", details, expected=False, functionalities=(functionality,),
            warning=warning)).allowed

    def _suspect(self, handle: SpokeHandle, step: int | None) -> list[Destination]:
        """The destinations in planned step ``step``'s input that the user did not give."""
        if step is None or not 0 <= step < len(handle.planned):
            return []
        return unknown(handle.planned[step].input, self._known)

    def _serve_probe(self, handle: SpokeHandle, request: FunctionProbeRequest) -> Message:
        f = self.importer.functionality(request.functionality)
        if f is None:
            return NoFunctionalityResponse(id=request.id, functionality=request.functionality)
        if f.app != handle.app.name and not self._exec_allowed(handle, f.app, f.name):
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
        step = self._planned_step(handle, f.name, dict(request.request))
        if not self._exec_allowed(handle, f.app, f.name, request=dict(request.request), step=step):
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
        target.begin()
        if step is not None:
            handle.used.add(step)
        if caller == ROUTING and (denial := self._routing_flow_refused(handle, f, request, step)):
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
            decision = self.permissions.check(PermissionRequest(
                self.user, self._permission_key(handle, f.app), "collab",
                f"{f.app} answers {caller} ({f.name}): {shown(outcome.response)}",
                expected=step is not None and not self._suspect(handle, step), functionalities=(f.name,)))
            if not decision.allowed:
                return FunctionalityDenialResponse(id=request.id, functionality=f.name,
                                                   reason=f"the user did not allow sharing {f.app}'s answer")
        handle.received.append((f.app, json.dumps(outcome.response, ensure_ascii=False)))
        return AppResponse(id=request.id, functionality=f.name, response=outcome.response)

    def _planned_step(self, handle: SpokeHandle, name: str, request: dict) -> int | None:
        """The unused planned step this call is, if any. A value the plan takes from step k's
        result must be made of words of the answer of step k's app that the hub handed to this
        spoke (unverifiable, and accepted, only when step k is the caller's own app)."""
        def from_result(k: int, actual) -> bool:
            if not 0 < k <= len(handle.planned):
                return False
            source = self.importer.owner.get(handle.planned[k - 1].name)
            if source == handle.app.name:
                return True
            text = actual if isinstance(actual, str) else json.dumps(actual, ensure_ascii=False)
            return any(app == source and _words(text) <= _words(answer) for app, answer in handle.received)
        return planned_step(handle.planned, name, request, handle.used, from_result)

    def _routing_flow_refused(self, handle: SpokeHandle, f, request: AppRequest,
                              step: int | None) -> Message | None:
        """The routing spoke is not an app, so its calls have no collab step; but once an app
        has answered it, that answer is in its LLM's context and may be forwarded. When a
        request carries data from an earlier answer of another app, the user is asked (collab
        B->C), expected only if the plan says this step uses a result of B's (``<result_k>``)."""
        sent = json.dumps(request.request, ensure_ascii=False)
        steps = handle.planned
        refs = RESULT_REF.findall(json.dumps(steps[step].input)) if step is not None else []
        declared = {self.importer.owner.get(steps[int(k) - 1].name) for k in refs if 0 < int(k) <= len(steps)}
        for source, answer in handle.received:
            if source == f.app or not _carries(answer, sent, given=self.query):
                continue
            decision = self.permissions.check(PermissionRequest(
                self.user, pair_key(source, f.app), "collab",
                f"{source}'s answer would be passed to {f.name}: {shown(request.request)}",
                expected=source in declared, functionalities=(f.name,)))
            if not decision.allowed:
                return FunctionalityDenialResponse(id=request.id, functionality=f.name,
                                                   reason=f"the user did not allow passing {source}'s answer to {f.app}")
        return None


Verify = Callable[[int, object], bool]


def _destination_warning(found: list[Destination]) -> str:
    names = ", ".join(str(d) for d in found)
    return (f"the plan names {names}, which is neither in your request nor among your saved details; "
            "an app's text may have put it there")


def planned_step(steps, name: str, request: dict, used=(), from_result: Verify | None = None) -> int | None:
    """The first step of the plan, not yet used, that this call is: same functionality, every
    planned input value matched, no other input set. A value the plan takes from step k's result
    (``<result_k>``) matches what ``from_result(k, value)`` accepts (anything without it)."""
    for i, s in enumerate(steps):
        if i not in used and s.name == name and _same(request, s.input if isinstance(s.input, dict) else {},
                                                      from_result):
            return i
    return None


def as_planned(steps, name: str, request: dict) -> bool:
    return planned_step(steps, name, request) is not None


def _same(actual, planned, from_result: Verify | None = None) -> bool:
    if isinstance(planned, str) and (refs := RESULT_REF.findall(planned)):
        return from_result is None or any(from_result(int(k), actual) for k in refs)
    if isinstance(planned, dict):
        return (isinstance(actual, dict)
                and all(k in planned or v in (None, "", [], {}) for k, v in actual.items())
                and all(_same(actual.get(k), v, from_result) for k, v in planned.items()))
    if isinstance(planned, list):
        return (isinstance(actual, list) and len(actual) == len(planned)
                and all(_same(a, p, from_result) for a, p in zip(actual, planned)))
    if actual is None and planned in ("", [], {}):
        return True  # left out, or given empty: the same request
    if isinstance(planned, bool) or isinstance(actual, bool) or planned is None or actual is None:
        return planned is actual
    return _scalar(actual) == _scalar(planned)


def _scalar(value) -> str:
    """A scalar as compared with the plan: text without case or spacing differences; a number
    whether the planner wrote it as a number or as text ("5" is 5)."""
    text = " ".join(str(value).split()).casefold()
    try:
        return repr(float(text))
    except ValueError:
        return text


def renumber(steps: list[PlanStep], kept: list[int]) -> list[PlanStep]:
    """Steps kept from a plan (their original positions in ``kept``), with ``<result_k>`` counted
    again among them; a reference to a dropped step becomes ``<result_0>``, which names no step."""
    position = {old + 1: new + 1 for new, old in enumerate(kept)}
    if all(position[k] == k for k in position):
        return steps

    def fix(text: str) -> str:
        return RESULT_REF.sub(lambda m: f"<result_{position.get(int(m.group(1)), 0)}>", text)
    return [s.model_copy(update={"input": _map_text(s.input, fix)}) for s in steps]


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9@]+", text.lower()))


def _carries(answer: str, request: str, given: str = "") -> bool:
    """Does ``request`` contain data from ``answer``? Any run of three words, or any distinctive
    token (with a digit or '@', 4+ characters), of the answer found in the request, unless the
    user ``given`` it in the query (then it is the user's, not the app's)."""
    words = re.findall(r"[\w@.$-]+", answer.lower())
    text, own = request.lower(), " ".join(re.findall(r"[\w@.$-]+", given.lower()))
    if any(len(w) >= 4 and re.search(r"[\d@]", w) and w in text and w not in own for w in words):
        return True
    runs = (" ".join(words[i:i + 3]) for i in range(len(words) - 2))
    return any(run in text and run not in own for run in runs)


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


def _map_text(value, change: Callable[[str], str]):
    """``value`` (a plan step's input: JSON) with ``change`` applied to every string in it."""
    if isinstance(value, str):
        return change(value)
    if isinstance(value, list):
        return [_map_text(v, change) for v in value]
    if isinstance(value, dict):
        return {k: _map_text(v, change) for k, v in value.items()}
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
