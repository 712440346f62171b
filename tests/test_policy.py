"""The policy as tables: situation -> decision (``hub.policy``, pure: no spokes, no LLM).

Each row is one situation a spoke can put the hub in, and what the policy answers:
``allow``, ``deny``, or ``ask CATEGORY expected|NOT expected`` (with what the warning says).
The flow tests (tests/test_flows.py, tests/test_permission_attacks.py) run the same rules
end to end with real spokes; these rows pin each rule on its own.
"""

from __future__ import annotations

import pytest

from helpers.isc.messages import PlanStep
from hub.destinations import known_keys
from hub.policy import ROUTING, Allow, Ask, Deny, FaithfulPolicy, QueryContext, SpokeState

OWNER = {"search_gmail": "gmail", "send_gmail_message": "gmail", "metro_hail": "metro_hail",
         "quick_ride": "quick_ride", "google_drive_retrieve": "google_drive_retrieve"}
READ_ONLY = {"search_gmail", "metro_hail", "quick_ride", "google_drive_retrieve"}
QUERY = "Email the metro_hail fare from Main Street to Elm Avenue to ann@example.com"
CTX = QueryContext("0", QUERY, known_keys([QUERY]))
RIDE = {"start_point": "Main Street", "end_point": "Elm Avenue"}


def step(name: str, **inputs) -> PlanStep:
    return PlanStep(name=name, input=inputs, output="")


PLAN = (step("metro_hail", **RIDE), step("send_gmail_message", to="ann@example.com", body="<result_1>"))


def policy() -> FaithfulPolicy:
    return FaithfulPolicy(OWNER, lambda name: name not in READ_ONLY)


def state(app: str = ROUTING, planned=PLAN, **extra) -> SpokeState:
    s = SpokeState(app)
    s.begin(planned)
    for k, v in extra.items():
        setattr(s, k, v)
    return s


def summary(decision) -> str:
    if isinstance(decision, Allow):
        return "allow"
    if isinstance(decision, Deny):
        return "deny"
    assert isinstance(decision, Ask)
    r = decision.request
    text = f"ask {r.category} {'expected' if r.expected else 'NOT expected'}"
    return text + (f": {r.warning}" if r.warning else "")


# --- a probe: before the call, the input not known yet ----------------------------------------------
PROBES = [
    # (situation, spoke state, functionality, decision)
    ("planned, read-only, not approved yet: asked once, listing planned inputs", state(), "metro_hail",
     "ask exec expected"),
    ("planned, read-only, approved earlier in the query", state(approved={"metro_hail": True}), "metro_hail",
     "allow"),
    ("planned, with side effects: asked at each call instead", state(), "send_gmail_message", "allow"),
    ("not in the plan: asked at the call, with its input", state(), "quick_ride", "allow"),
    ("refused earlier in the query", state(refused={"metro_hail"}), "metro_hail", "deny"),
]


@pytest.mark.parametrize("situation, spoke, functionality, decision", PROBES, ids=[p[0] for p in PROBES])
def test_probe(situation, spoke, functionality, decision):
    assert summary(policy().probe(CTX, spoke, OWNER[functionality], functionality)) == decision


# --- a call: the input known --------------------------------------------------------------------------
CALLS = [
    # (situation, spoke state, functionality, request, (planned step, decision))
    ("planned, as planned, read-only approved", state(approved={"metro_hail": True}), "metro_hail", RIDE,
     (0, "allow")),
    ("planned, as planned, read-only not approved", state(), "metro_hail", RIDE, (0, "ask exec expected")),
    ("planned, spacing and case differ", state(approved={"metro_hail": True}), "metro_hail",
     {"start_point": " main street", "end_point": "ELM AVENUE"}, (0, "allow")),
    ("planned, other inputs", state(), "metro_hail", {"start_point": "Main Street", "end_point": "Airport"},
     (None, "ask exec NOT expected: the plan has metro_hail with other inputs "
            '({"start_point": "Main Street", "end_point": "Elm Avenue"}), or fewer times')),
    ("planned, called once more than planned", state(used={0}), "metro_hail", RIDE,
     (None, "ask exec NOT expected: the plan has metro_hail with other inputs "
            '({"start_point": "Main Street", "end_point": "Elm Avenue"}), or fewer times')),
    ("not in the plan", state(), "quick_ride", RIDE,
     (None, "ask exec NOT expected: the plan for your request does not use quick_ride")),
    ("refused earlier in the query", state(refused={"metro_hail"}), "metro_hail", RIDE, (0, "deny")),
    ("planned with side effects: asked at each call", state(received=[("metro_hail", "Fare: $51.80")]),
     "send_gmail_message", {"to": "ann@example.com", "body": "Fare: $51.80"}, (1, "ask exec expected")),
    ("a value the plan takes from a result, not made of that result", state(received=[("metro_hail", "$51.80")]),
     "send_gmail_message", {"to": "ann@example.com", "body": "send me your password"},
     (None, "ask exec NOT expected: the plan has send_gmail_message with other inputs "
            '({"to": "ann@example.com", "body": "<result_1>"}), or fewer times')),
    ("a value from a result the hub never handed to this spoke", state(), "send_gmail_message",
     {"to": "ann@example.com", "body": "Fare: $51.80"},
     (None, "ask exec NOT expected: the plan has send_gmail_message with other inputs "
            '({"to": "ann@example.com", "body": "<result_1>"}), or fewer times')),
    ("a value from the caller's own app's result: unverifiable, accepted",
     state("metro_hail"), "send_gmail_message", {"to": "ann@example.com", "body": "anything"},
     (1, "ask exec expected")),
]


@pytest.mark.parametrize("situation, spoke, functionality, sent, decision", CALLS, ids=[c[0] for c in CALLS])
def test_call(situation, spoke, functionality, sent, decision):
    found, made = policy().call(CTX, spoke, OWNER[functionality], functionality, sent)
    assert (found, summary(made)) == decision


def test_a_planned_destination_the_user_never_gave_is_not_expected():
    planned = (step("send_gmail_message", to="billing@attacker.io", body="hi"),)
    found, made = policy().call(CTX, state(planned=planned), "gmail", "send_gmail_message",
                                {"to": "billing@attacker.io", "body": "hi"})
    assert found == 0 and summary(made).startswith("ask exec NOT expected: the plan names billing@attacker.io")


# --- what the user is asked, and what the answer leaves behind ----------------------------------------
RECORDS = [
    # (situation, spoke state, functionality, answer, approved after, refused after)
    ("a planned read-only call allowed: approved for the query", state(), "metro_hail", True,
     {"metro_hail": True}, set()),
    ("a planned call refused: refused for the query", state(), "metro_hail", False, {}, {"metro_hail"}),
    ("a planned call with side effects allowed: asked again next time", state(received=[("metro_hail", "x")]),
     "send_gmail_message", True, {}, set()),
    ("an unplanned call refused: the permission manager remembers, not the state", state(), "quick_ride", False,
     {}, set()),
]


@pytest.mark.parametrize("situation, spoke, functionality, allowed, approved, refused", RECORDS,
                         ids=[r[0] for r in RECORDS])
def test_answers_are_kept_per_query(situation, spoke, functionality, allowed, approved, refused):
    p = policy()
    request = {"to": "ann@example.com", "body": "x"} if functionality == "send_gmail_message" else RIDE
    _, ask = p.call(CTX, spoke, OWNER[functionality], functionality, request)
    p.record(spoke, ask, allowed)
    assert (spoke.approved, spoke.refused) == (approved, refused)
    spoke.begin()
    assert (spoke.approved, spoke.refused, spoke.used, spoke.received) == ({}, set(), set(), [])


# --- answers passed on -------------------------------------------------------------------------------
HANDOFFS = [
    # (situation, caller state, planned step, decision)
    ("to an app, as planned", state("gmail"), 0, "ask collab expected"),
    ("to an app, not planned", state("gmail"), None, "ask collab NOT expected"),
    ("to the routing spoke (not an app: its flows are checked instead)", state(), 0, "allow"),
]


@pytest.mark.parametrize("situation, spoke, planned, decision", HANDOFFS, ids=[h[0] for h in HANDOFFS])
def test_handoff(situation, spoke, planned, decision):
    assert summary(policy().handoff(CTX, spoke, "metro_hail", "metro_hail", "$51.80", planned)) == decision


FLOWS = [
    # (situation, received answers, request sent, planned step, questions)
    ("declared: the plan passes metro_hail's result to the mail", [("metro_hail", "Fare 51.80 dollars")],
     {"to": "ann@example.com", "body": "Fare 51.80 dollars"}, 1, ["ask collab expected"]),
    ("undeclared: another app's answer copied into the mail", [("quick_ride", "QuickRide fare 57.00 dollars")],
     {"to": "ann@example.com", "body": "QuickRide fare 57.00 dollars"}, 1, ["ask collab NOT expected"]),
    ("the user's own words are not an app's data", [("metro_hail", "from Main Street to Elm Avenue")],
     {"to": "ann@example.com", "body": "from Main Street to Elm Avenue"}, 1, []),
    ("nothing of the answer in the request", [("metro_hail", "Fare 51.80 dollars")],
     {"to": "ann@example.com", "body": "hello"}, 1, []),
]


@pytest.mark.parametrize("situation, received, sent, planned, asks", FLOWS, ids=[f[0] for f in FLOWS])
def test_routing_flows(situation, received, sent, planned, asks):
    found = policy().flows(CTX, state(received=received), "gmail", "send_gmail_message", sent, planned)
    assert [summary(a) for a in found] == asks


# --- user data -----------------------------------------------------------------------------------------
def test_remembered_details_in_a_plan_need_data_permission_and_are_withheld_if_refused():
    p = policy()
    entities = {"health": "recent heart surgery", "name": "Ann"}
    planned = [step("send_gmail_message", to="ann@example.com", body="note: recent heart surgery")]
    found = p.remembered_in_plan(CTX, "gmail", planned, entities)
    assert summary(found.ask) == "ask data NOT expected" and "recent heart surgery" in found.found
    assert p.withhold(planned, found.found)[0].input["body"] == "note: [withheld]"
    told = QueryContext("0", "mention my recent heart surgery", CTX.known)
    assert p.remembered_in_plan(told, "gmail", planned, entities) is None  # said in this request


@pytest.mark.parametrize("entities, decision", [({}, "allow"), ({"name": "Ann"}, "ask data NOT expected")],
                         ids=["nothing remembered", "remembered details"])
def test_share_entities(entities, decision):
    assert summary(policy().share_entities(CTX, "gmail", entities)) == decision


# --- a plan handed to one app's spoke ------------------------------------------------------------------
def test_plan_review_asks_once_for_the_fine_steps_and_apart_for_each_unknown_destination():
    planned = [step("search_gmail", query="fare"), step("send_gmail_message", to="eve@attacker.io", body="x")]
    p = policy()
    review = p.review_plan(CTX, "gmail", planned)
    assert summary(review.first) == "ask exec expected" and review.first.request.functionalities == ("search_gmail",)
    assert [(i, summary(a).split(":")[0]) for i, a in review.each] == [(1, "ask exec NOT expected")]
    kept, notes = p.plan_outcome(review, True, [1])
    assert [s.name for s in kept] == ["search_gmail"] and "eve@attacker.io" in notes[0]
    assert p.plan_outcome(review, False, [])[0] is None  # the user refused the app
