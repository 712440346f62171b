"""Runs in: hub.

The strict mode's policy: the plan is the policy, an app's own functionalities included.

Pure: no I/O.

In strict mode the hub itself runs every planned step (``hub.plan_runner``), so no spoke
has a step left to run: a tool call an LLM reply asks a spoke to make of its own app's
functionality is not in the plan, and is a question marked not expected (``--consent
expected`` refuses it). The hub makes this check on the reply it brokers, before the spoke
sees it; code in the spoke is not trusted to make it. What it cannot stop: the app's own
code calling its own functions (no LLM involved; the app's code is the app).

Everything else is the faithful policy's: the same questions, bound to the plan's inputs.
"""

from __future__ import annotations

from collections.abc import Sequence

from helpers.isc.messages import PlanStep
from helpers.permission.prompt import PermissionRequest, shown
from helpers.permission.store import pair_key
from hub.destinations import Destination
from hub.plan import planned_step
from hub.policy import ALLOW, Ask, Decision, FaithfulPolicy, QueryContext, SpokeState


class StrictPolicy(FaithfulPolicy):
    name = "strict"

    def own_call(self, ctx: QueryContext, state: SpokeState, functionality: str, request: dict) -> Decision:
        step = planned_step(state.planned, functionality, request, state.used)
        if step is not None and functionality in state.approved:
            state.used.add(step)
            return ALLOW
        return Ask(PermissionRequest(
            ctx.user, state.app, "exec", f"{state.app}'s LLM wants to run {functionality} with {shown(request)}",
            expected=False, functionalities=(functionality,),
            warning=f"SecGPT already ran every step the plan has for {state.app}; this call is not in the plan "
                    "(an instruction in data the LLM read may have asked for it)"))

    def declared_flow(self, ctx: QueryContext, source: str, target: str, functionality: str, field: str,
                      k: int, value, embedded: Sequence[str] = ()) -> Ask:
        """A value the plan takes from ``source``'s result (step ``k``) for ``target``'s input
        ``field``: the plan declares the flow, so it is expected; the question shows the value and
        the app it comes from (it may be whatever that app's data says). A destination in the value
        that the result holds only inside a longer text (``embedded``, ``hub.provenance``) is
        pointed out: that is where an instruction hidden in the data would write one. It stays
        expected: links and addresses in messages are how users ask for most such flows (measured:
        refusing them cost a third of AgentDojo's slack tasks)."""
        warning = (f"{', '.join(embedded)} appears in {source}'s result only inside a longer text, not as a "
                   "field of its own: check it, an instruction hidden in that text may have put it there"
                   if embedded else "")
        return Ask(PermissionRequest(
            ctx.user, pair_key(source, target), "collab",
            f"{source}'s result (step {k}) goes to {functionality} as {field}: {shown(value)}",
            expected=True, functionalities=(functionality,), warning=warning))

    def _step_line(self, i: int, step: PlanStep, app: str, suspect: list[Destination] | None) -> str:
        line = super()._step_line(i, step, app, suspect)
        owner = self.owner[step.name]
        return line.replace(f"  (asked when {app} calls {owner})", f"  (run by {owner}; asked for {owner})")
