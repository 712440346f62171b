"""Runs in: hub.

The policy: what a call, a data flow or a plan's input may do, and which question it needs.

Pure: no I/O, no sockets, no questions put. The hub operator carries out what the policy decides:
``Allow``, ``Deny(reason)``, or ``Ask(request)`` (a permission question: category, key, details,
expected or not), and tells the policy the answer (``record``), which it keeps in the spoke's
per-query state (``SpokeState``).

``Policy`` is the interface a researcher implements to try another policy, the way
AgentDojo plugs in defences; ``FaithfulPolicy`` is the paper's (``--isolation faithful``),
``hub.strict_policy.StrictPolicy`` the strict mode's. What a policy is asked:

* ``review_plan``: a one-group plan about to be handed to one app's spoke;
* ``remembered_in_plan``: details the user told earlier, found in a plan's inputs;
* ``share_entities``: a spoke asks for the user's remembered details;
* ``probe`` / ``call``: a spoke wants another app's functionality (before and at the call);
* ``handoff``: the callee's answer goes back to the calling app;
* ``flows``: the routing spoke passes one app's answer on to another app;
* ``own_call``: an LLM reply asks a spoke to run its own app's functionality.

What counts as expected is the plan, read with suspicion: the planner is an LLM that reads
text apps wrote, so a planned input naming a destination the user never gave
(``hub.destinations``) is not expected.
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from pydantic import JsonValue

from helpers.isc.messages import PlanStep
from helpers.permission.prompt import PermissionRequest, shown
from helpers.permission.store import pair_key
from helpers.utilities.text import as_text
from hub import dataflow
from hub.destinations import Destination, unknown
from hub.plan import map_text, planned_step, references, renumber

ROUTING, VANILLA = "routing", "vanilla"


# --- decisions ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Allow:
    pass


@dataclass(frozen=True)
class Deny:
    reason: str


@dataclass(frozen=True)
class Ask:
    request: PermissionRequest
    keep: bool = False       # allowed: the functionality stays approved for this query
    refuse: bool = False     # refused: the functionality is refused for this query
    source: str = ""         # the app whose data the question is about (``flows``)


Decision = Allow | Deny | Ask
ALLOW = Allow()


# --- per-query state ---------------------------------------------------------------------------------

@dataclass
class SpokeState:
    """What the policy knows of one spoke during the query in progress: what the plan foresees
    for it (a planned functionality called with other inputs than planned is not expected),
    which other apps' functionalities the user let it use (planned ones for the whole query, an
    unplanned one for the one call it was asked for), which were refused, what it was handed."""
    app: str
    planned: tuple[PlanStep, ...] = ()
    used: set[int] = field(default_factory=set)              # planned steps called: each is expected once
    approved: dict[str, bool] = field(default_factory=dict)  # functionality -> reusable in this query
    refused: set[str] = field(default_factory=set)
    received: list[tuple[str, str]] = field(default_factory=list)  # (app, answer) handed to it this query

    @property
    def expected(self) -> frozenset[str]:
        """The functionalities the plan names for it."""
        return frozenset(s.name for s in self.planned)

    def begin(self, planned: Sequence[PlanStep] = ()) -> None:
        """A new query (or, for a callee, a new call): nothing approved, refused or received yet."""
        self.planned, self.used, self.approved, self.refused, self.received = tuple(planned), set(), {}, set(), []


@dataclass(frozen=True)
class QueryContext:
    """The query in progress, as the policy sees it."""
    user: str
    query: str = ""                        # what the user said is the user's, not an app's data
    known: frozenset[str] = frozenset()    # destinations the user gave (request, remembered details)


@dataclass(frozen=True)
class PlanReview:
    """The questions before a one-group plan runs in ``app``'s spoke: ``first`` for the steps
    that are fine (None if none is), then one per step naming a destination the user never gave."""
    app: str
    steps: tuple[PlanStep, ...]
    first: Ask | None
    each: tuple[tuple[int, Ask], ...]
    suspects: Mapping[int, list[Destination]]


@dataclass(frozen=True)
class PlanData:
    """Details the user told earlier, found in a plan's inputs: one data question."""
    ask: Ask
    found: tuple[str, ...]


# --- the interface -----------------------------------------------------------------------------------

class Policy(ABC):
    """Decides; never asks. ``owner`` maps a functionality to its app, ``side_effects`` says
    whether a functionality sends, writes or books (``hub.effects``)."""
    name: str = ""

    def __init__(self, owner: Mapping[str, str], side_effects: Callable[[str], bool]) -> None:
        self.owner, self.side_effects = owner, side_effects

    @abstractmethod
    def review_plan(self, ctx: QueryContext, app: str, steps: Sequence[PlanStep]) -> PlanReview: ...

    @abstractmethod
    def remembered_in_plan(self, ctx: QueryContext, target: str, steps: Sequence[PlanStep],
                           entities: Mapping[str, str]) -> PlanData | None: ...

    @abstractmethod
    def share_entities(self, ctx: QueryContext, app: str, entities: Mapping[str, str]) -> Decision: ...

    @abstractmethod
    def probe(self, ctx: QueryContext, state: SpokeState, target: str, functionality: str) -> Decision: ...

    @abstractmethod
    def call(self, ctx: QueryContext, state: SpokeState, target: str, functionality: str,
             request: dict[str, JsonValue]) -> tuple[int | None, Decision]:
        """The planned step this call is (None: not one), and the decision."""

    @abstractmethod
    def handoff(self, ctx: QueryContext, state: SpokeState, target: str, functionality: str,
                response: JsonValue, step: int | None) -> Decision: ...

    @abstractmethod
    def flows(self, ctx: QueryContext, state: SpokeState, target: str, functionality: str,
              request: dict[str, JsonValue], step: int | None) -> list[Ask]: ...

    @staticmethod
    def plan_outcome(review: PlanReview, first_allowed: bool,
                     left_out: Sequence[int]) -> tuple[list[PlanStep] | None, list[str]]:
        """The steps handed to the app after the answers (None: nothing of the app's may run),
        and what the user is told after the answer."""
        if review.first is not None and not first_allowed:
            return None, []
        if left_out and review.first is None and len(left_out) == len(review.each):
            return None, []
        kept = [i for i in range(len(review.steps)) if i not in left_out]
        notes = [f"I left out step {i + 1} of the plan ({review.steps[i].name}): it names "
                 f"{', '.join(d.text for d in review.suspects[i])}, which you did not give, and it was not allowed."
                 for i in left_out]
        return renumber([review.steps[i] for i in kept], kept), notes

    @staticmethod
    def withhold(steps: Sequence[PlanStep], found: Sequence[str]) -> list[PlanStep]:
        pattern = re.compile("|".join(re.escape(v) for v in sorted(found, key=len, reverse=True)), re.IGNORECASE)
        return [s.model_copy(update={"input": map_text(s.input, lambda text: pattern.sub("[withheld]", text))})
                for s in steps]

    @abstractmethod
    def own_call(self, ctx: QueryContext, state: SpokeState, functionality: str,
                 request: dict[str, JsonValue]) -> Decision:
        """A tool call of the spoke's own app, in an LLM reply the hub brokers for that spoke."""

    def record(self, state: SpokeState, ask: Ask, allowed: bool) -> None:
        """The answer to ``ask``, kept for the rest of the query."""
        functionality = ask.request.functionalities[0] if ask.request.functionalities else ""
        if allowed and ask.keep:
            state.approved[functionality] = True
        elif not allowed and ask.refuse:
            state.refused.add(functionality)


# --- the paper's policy ------------------------------------------------------------------------------

class FaithfulPolicy(Policy):
    """IsolateGPT's permissions, with the plan (inputs included) deciding what is expected.

    * A planned step, as planned, naming no destination the user did not give, is expected: a
      read-only functionality is asked once, at the probe, listing its planned inputs, and stays
      approved for its planned steps in this query; one with side effects is asked at each call,
      with the input. Refused, the functionality is refused for the query.
    * Anything else (not in the plan; planned, but with other inputs or once more than planned;
      a planned input with an unknown destination) is never asked at the probe, always at the
      call, with the input and the reason.
    * The app's own steps run in its spoke unseen by the hub: a step naming an unknown
      destination is asked on its own before the plan is handed over, and left out if refused."""
    name = "faithful"

    # --- before a plan runs ---
    def review_plan(self, ctx: QueryContext, app: str, steps: Sequence[PlanStep]) -> PlanReview:
        suspects = {i: found for i, s in enumerate(steps) if (found := unknown(s.input, ctx.known))}
        own = [i for i, s in enumerate(steps) if self.owner[s.name] == app]
        fine = [i for i in own if i not in suspects]
        listing = "\n".join(self._step_line(i, s, app, suspects.get(i)) for i, s in enumerate(steps))
        first = None
        if fine:
            first = Ask(PermissionRequest(
                ctx.user, app, "exec", f"handle your request with {app}; the plan:\n{listing}", expected=True,
                functionalities=tuple(dict.fromkeys(steps[i].name for i in fine))))
        whole = "" if fine else f"\nThe whole plan:\n{listing}"  # not shown already
        each = tuple((i, Ask(PermissionRequest(
            ctx.user, app, "exec", f"{app} would run step {i + 1} of the plan: {steps[i].name} "
                                   f"{shown(steps[i].input)}{whole}",
            expected=False, functionalities=(steps[i].name,), warning=destination_warning(suspects[i]))))
            for i in own if i in suspects)
        return PlanReview(app, tuple(steps), first, each, suspects)

    def _step_line(self, i: int, step: PlanStep, app: str, suspect: list[Destination] | None) -> str:
        line = f"  {i + 1}. {step.name} {shown(step.input, 160)}"
        if suspect:
            line += f"  <- NOT expected: {', '.join(d.text for d in suspect)} is not in your request"
        owner = self.owner[step.name]
        if owner != app:
            line += f"  (asked when {app} calls {owner})"
        elif suspect:
            line += " (asked next)"
        return line

    def remembered_in_plan(self, ctx: QueryContext, target: str, steps: Sequence[PlanStep],
                           entities: Mapping[str, str]) -> PlanData | None:
        """The plan is written by an LLM that saw the chat history: a step's input may carry
        details the user told earlier (not in this query). Those are user data handed to an
        app, so they pass a data permission; refused, they are withheld (``withhold``)."""
        known = {p for value in entities.values() for p in dataflow.phrases(value)
                 if p.lower() not in ctx.query.lower()}
        text = json.dumps([s.input for s in steps], ensure_ascii=False).lower()
        found = tuple(sorted(v for v in known if v.lower() in text))
        if not found:
            return None
        return PlanData(Ask(PermissionRequest(
            ctx.user, target, "data", f"the plan hands {target} details you gave earlier: {'; '.join(found)}",
            expected=False)), found)

    def share_entities(self, ctx: QueryContext, app: str, entities: Mapping[str, str]) -> Decision:
        if not entities:
            return ALLOW
        return Ask(PermissionRequest(
            ctx.user, app, "data", f"{app} asks for your remembered details: {', '.join(sorted(entities))}",
            expected=False))

    def own_call(self, ctx: QueryContext, state: SpokeState, functionality: str,
                 request: dict[str, JsonValue]) -> Decision:
        """The paper's architecture: an app's spoke runs its own functionalities unchecked."""
        return ALLOW

    # --- another app's functionality ---
    @staticmethod
    def key(state: SpokeState, target: str) -> str:
        return target if state.app == ROUTING else pair_key(state.app, target)

    @staticmethod
    def who(state: SpokeState) -> str:
        return "the coordinator" if state.app == ROUTING else state.app

    def probe(self, ctx: QueryContext, state: SpokeState, target: str, functionality: str) -> Decision:
        """Before the call, its input not known yet: only a planned read-only functionality is
        asked here (once, listing its planned inputs); everything else is asked at the call."""
        if functionality in state.refused:
            return Deny(f"the user did not allow using {target}")
        if functionality not in state.expected or self.side_effects(functionality) or functionality in state.approved:
            return ALLOW
        planned_inputs = [s.input for s in state.planned if s.name == functionality]
        return Ask(PermissionRequest(
            ctx.user, self.key(state, target), "exec",
            f"{self.who(state)} wants to run {functionality} of {target}, as planned: "
            f"{'; '.join(shown(i, 160) for i in planned_inputs)}",
            expected=True, functionalities=(functionality,)), keep=True, refuse=True)

    def call(self, ctx: QueryContext, state: SpokeState, target: str, functionality: str,
             request: dict[str, JsonValue]) -> tuple[int | None, Decision]:
        step = self.step_of(state, functionality, request)
        if functionality in state.refused:
            return step, Deny(f"the user did not allow using {target}")
        side_effects = self.side_effects(functionality)
        suspect = self.suspect(ctx, state, step)
        details = f"{self.who(state)} wants to run {functionality} of {target} with {shown(request)}"
        key = self.key(state, target)
        if step is not None and not suspect:
            if functionality in state.approved and not side_effects:
                return step, ALLOW
            return step, Ask(PermissionRequest(ctx.user, key, "exec", details, expected=True,
                                               functionalities=(functionality,)),
                             keep=not side_effects, refuse=True)
        planned_inputs = [s.input for s in state.planned if s.name == functionality]
        if suspect:
            warning = destination_warning(suspect)
        elif planned_inputs:
            warning = (f"the plan has {functionality} with other inputs "
                       f"({'; '.join(shown(i, 120) for i in planned_inputs)}), or fewer times")
        else:
            warning = f"the plan for your request does not use {functionality}"
        return step, Ask(PermissionRequest(ctx.user, key, "exec", details, expected=False,
                                           functionalities=(functionality,), warning=warning))

    def step_of(self, state: SpokeState, functionality: str, request: dict[str, JsonValue]) -> int | None:
        """The unused planned step this call is, if any. A value the plan takes from step k's
        result must be made of words of the answer of step k's app that the hub handed to this
        spoke (unverifiable, and accepted, only when step k is the caller's own app)."""
        def from_result(k: int, actual: object) -> bool:
            if not 0 < k <= len(state.planned):
                return False
            source = self.owner.get(state.planned[k - 1].name)
            if source == state.app:
                return True
            text = as_text(actual)
            return any(app == source and dataflow.made_of(text, answer) for app, answer in state.received)
        return planned_step(state.planned, functionality, request, state.used, from_result)

    @staticmethod
    def suspect(ctx: QueryContext, state: SpokeState, step: int | None) -> list[Destination]:
        """The destinations in planned step ``step``'s input that the user did not give."""
        if step is None or not 0 <= step < len(state.planned):
            return []
        return unknown(state.planned[step].input, ctx.known)

    def handoff(self, ctx: QueryContext, state: SpokeState, target: str, functionality: str,
                response: JsonValue, step: int | None) -> Decision:
        """Collab permission before ``target``'s answer reaches the calling app (the routing
        spoke is no app: its flows are ``flows``)."""
        if state.app == ROUTING:
            return ALLOW
        return Ask(PermissionRequest(
            ctx.user, self.key(state, target), "collab", f"{target} answers {state.app} ({functionality}): "
                                                         f"{shown(response)}",
            expected=step is not None and not self.suspect(ctx, state, step), functionalities=(functionality,)))

    def flows(self, ctx: QueryContext, state: SpokeState, target: str, functionality: str,
              request: dict[str, JsonValue], step: int | None) -> list[Ask]:
        """The routing spoke is not an app, so its calls have no collab step; but once an app
        has answered it, that answer is in its LLM's context and may be forwarded. When a
        request carries data from an earlier answer of another app (``hub.dataflow``: best
        effort), the user is asked (collab B->C), expected only if the plan says this step uses
        a result of B's (``<result_k>``)."""
        if state.app != ROUTING:
            return []
        sent = json.dumps(request, ensure_ascii=False)
        steps = state.planned
        refs = references(steps[step]) if step is not None else []
        declared = {self.owner.get(steps[k - 1].name) for k in refs if 0 < k <= len(steps)}
        return [Ask(PermissionRequest(
            ctx.user, pair_key(source, target), "collab",
            f"{source}'s answer would be passed to {functionality}: {shown(request)}",
            expected=source in declared, functionalities=(functionality,)), source=source)
            for source, answer in state.received
            if source != target and dataflow.carries(answer, sent, given=ctx.query)]


def destination_warning(found: list[Destination]) -> str:
    names = ", ".join(str(d) for d in found)
    return (f"the plan names {names}, which is neither in your request nor among your saved details; "
            "an app's text may have put it there")
