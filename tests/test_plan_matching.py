"""Does a call match the plan? The hub's matching of a spoke's call against the planned steps,
inputs included (no AgentDojo needed: these run on a core install)."""

from __future__ import annotations

from helpers.isc.messages import PlanStep
from hub.plan import as_planned


def test_plan_expectation_covers_inputs():
    steps = [PlanStep(name="send_direct_message", input={"recipient": "Alice", "body": "<result_2>"}, output=""),
             PlanStep(name="get_channels", input=None, output=""),
             PlanStep(name="get_file_by_id", input={"file_id": "5", "shared": False}, output="")]
    assert as_planned(steps, "send_direct_message", {"recipient": " alice ", "body": "anything at all"})
    assert not as_planned(steps, "send_direct_message", {"recipient": "Eve", "body": "anything"})
    assert not as_planned(steps, "send_channel_message", {"recipient": "Alice", "body": "x"})
    # an input the plan did not give may be left empty, never set
    assert as_planned(steps, "send_direct_message", {"recipient": "Alice", "body": "x", "cc": None})
    assert not as_planned(steps, "send_direct_message", {"recipient": "Alice", "body": "x", "bcc": ["eve@x.io"]})
    assert as_planned(steps, "get_channels", {}) and not as_planned(steps, "get_channels", {"all": True})
    assert as_planned(steps, "get_file_by_id", {"file_id": 5, "shared": False})  # "5" is 5
    assert not as_planned(steps, "get_file_by_id", {"file_id": "5", "shared": 0})  # a flag is not a number
    assert not as_planned(steps, "get_file_by_id", {"file_id": ["5"], "shared": False})


def test_each_planned_step_is_expected_once_and_results_are_checked():
    from hub.plan import planned_step, renumber
    steps = [PlanStep(name="search", input={"q": "x"}, output=""),
             PlanStep(name="send", input={"to": "<result_1>"}, output="")]
    assert planned_step(steps, "search", {"q": "x"}, used={0}) is None  # called once already
    seen = {1: "contact: sarah.baker@gmail.com"}
    check = lambda k, value: value in seen.get(k, "")  # noqa: E731
    assert planned_step(steps, "send", {"to": "sarah.baker@gmail.com"}, from_result=check) == 1
    assert planned_step(steps, "send", {"to": "eve@attacker.io"}, from_result=check) is None
    kept = renumber([steps[1]], [1])  # the search step was dropped (not installed)
    assert kept[0].input == {"to": "<result_0>"}  # names no step now, rather than the wrong one
