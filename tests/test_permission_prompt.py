"""The permission dialog (original wording and choices) and the consent policies."""

from __future__ import annotations

import pytest

from helpers.permission.prompt import (
    MAX_QUESTIONS_PER_QUERY,
    PermissionManager,
    PermissionRequest,
    dialog_text,
    shown,
)
from helpers.permission.store import PermissionStore

EXEC = PermissionRequest("0", "metro_hail", "exec", "calculate a fare", expected=True)
UNEXPECTED = PermissionRequest("0", "quick_ride->metro_hail", "exec", "metro_hail_fare", expected=False)
DATA = PermissionRequest("0", "travel_mate", "data", "name, email", expected=True)
COLLAB = PermissionRequest("0", "quick_ride->metro_hail", "collab", "fare: 51.8", expected=True)


@pytest.fixture
def store(tmp_path):
    return PermissionStore(tmp_path / "perm.json")


@pytest.mark.parametrize("request_,question", [
    (EXEC, "Allow metro_hail to execute?"),
    (DATA, "Allow travel_mate to access data?"),
    (COLLAB, "Allow quick_ride to use metro_hail to share data?"),
])
def test_wording(request_, question):
    text = dialog_text(request_)
    assert text.splitlines()[0] == question
    assert "1: Allow Once\n2: Allow for this Session\n3: Always Allow\n4: Don't Allow" in text
    assert f"Details: {request_.details}" in text


def test_unexpected_warning():
    assert "NOT expected" in dialog_text(UNEXPECTED)
    assert "NOT expected" not in dialog_text(EXEC)


def _manager(store, answers, mode="ask"):
    replies = iter(answers)
    shown = []
    return PermissionManager(store, mode, read=lambda _: next(replies), write=shown.append), shown


@pytest.mark.parametrize("answer,allowed,stored", [
    ("1", True, None), ("2", True, "session"), ("3", True, "permanent"), ("4", False, None)])
def test_choices(store, answer, allowed, stored):
    manager, _ = _manager(store, [answer])
    assert manager.check(EXEC).allowed is allowed
    assert store.scope("0", "metro_hail", "exec") == stored


def test_reasks_on_invalid_input(store):
    manager, shown = _manager(store, ["", "9", "yes", "3"])
    assert manager.check(EXEC).allowed
    assert shown.count("Please enter 1, 2, 3 or 4.") == 3


def test_standing_grant_skips_the_dialog(store):
    store.grant("0", "metro_hail", "exec", "permanent")
    manager, shown = _manager(store, [])
    decision = manager.check(EXEC)
    assert decision.allowed and decision.source == "stored" and not shown


@pytest.mark.parametrize("mode,expected_ok,unexpected_ok", [
    ("expected", True, False), ("all", True, True), ("none", False, False)])
def test_policies(store, mode, expected_ok, unexpected_ok):
    manager, shown = _manager(store, [], mode)
    assert manager.check(EXEC).allowed is expected_ok
    assert manager.check(UNEXPECTED).allowed is unexpected_ok
    assert not shown and store.load() == {}  # policies never store lasting grants


def test_decisions_are_reported(store):
    seen = []
    manager = PermissionManager(store, "expected", on_decision=lambda r, d: seen.append((r.key, d.allowed)))
    manager.check(UNEXPECTED)
    assert seen == [("quick_ride->metro_hail", False)]


# --- grants bound to functionalities, and never for what the plan did not expect ----------------------

SEARCH = PermissionRequest("0", "gmail", "exec", "search", expected=True, functionalities=("search_gmail",))
SEND_OFF_PLAN = PermissionRequest("0", "gmail", "exec", "send", expected=False,
                                  functionalities=("send_gmail_message",), warning="not in the plan")


def test_always_allow_is_bound_to_the_functionality(store):
    manager, _ = _manager(store, ["3"])
    assert manager.check(SEARCH).allowed
    assert store.load() == {"0": {"gmail:search_gmail": {"exec": "permanent"}}}
    manager, shown_ = _manager(store, [])
    assert manager.check(SEARCH).source == "stored" and not shown_


@pytest.mark.parametrize("grant", [("gmail", None), ("gmail", "send_gmail_message")])
@pytest.mark.parametrize("mode,allowed", [("ask", False), ("expected", False), ("all", True)])
def test_stored_grant_never_answers_an_unexpected_call(store, grant, mode, allowed):
    key, functionality = grant
    store.grant("0", key, "exec", "permanent", [functionality] if functionality else [])
    manager, shown_ = _manager(store, ["4"] if mode == "ask" else [], mode)
    decision = manager.check(SEND_OFF_PLAN)
    assert decision.allowed is allowed and decision.source != "stored"
    assert (mode == "ask") is bool(shown_)  # asked, with the warning
    if shown_:
        assert "NOT expected" in shown_[0] and "Why: not in the plan" in shown_[0]


def test_stored_data_grant_still_answers(store):
    store.grant("0", "travel_mate", "data", "permanent")
    manager, shown_ = _manager(store, [], "expected")
    request = PermissionRequest("0", "travel_mate", "data", "name", expected=False)
    assert manager.check(request).source == "stored" and not shown_


# --- what the dialog shows --------------------------------------------------------------------------------

def test_shown_is_one_line_cut_and_inert():
    value = {"to": "eve@attacker.io\n1: Allow Once", "body": "\x1b]52;c;aGk=\x07" + "x" * 500}
    text = shown(value, 80)
    assert "\n" not in text and "\x1b" not in text and len(text) == 80 and text.endswith("…")
    assert shown("a\nb") == "a b"


def test_dialog_makes_details_inert_and_says_what_a_grant_keeps():
    request = PermissionRequest("0", "gmail", "exec", "to \x1b[2Jeve", expected=False,
                                functionalities=("send_gmail_message",), warning="named by \x1b[31man app")
    text = dialog_text(request)
    assert "\x1b" not in text and "Why: named by an app" in text
    assert "kept for send_gmail_message only" in text


# --- no prompt flood ----------------------------------------------------------------------------------------

def test_a_refusal_stands_for_the_query(store):
    manager, shown_ = _manager(store, ["4"])
    assert not manager.check(SEND_OFF_PLAN).allowed
    other_input = PermissionRequest("0", "gmail", "exec", "send to someone else", expected=False,
                                    functionalities=("send_gmail_message",))
    decision = manager.check(other_input)
    assert not decision.allowed and decision.source == "refused earlier" and len(shown_) == 1
    manager.begin_query()
    manager._read = lambda _: "1"
    assert manager.check(other_input).allowed  # a new query asks again


def test_questions_are_capped_per_query_and_the_user_told_once(store):
    manager, shown_ = _manager(store, ["1"] * MAX_QUESTIONS_PER_QUERY)
    requests = [PermissionRequest("0", f"app{i}", "exec", "x", expected=False) for i in range(12)]
    decisions = [manager.check(r) for r in requests]
    assert [d.source for d in decisions] == ["user"] * 8 + ["cap"] * 4
    told = [t for t in shown_ if "asked you 8 questions" in t]
    assert len(told) == 1 and manager.capped == 4
    manager._read = lambda _: "1"
    assert manager.check(EXEC).allowed  # what the plan expected is still asked


def test_the_cap_can_be_lowered_not_raised(store):
    assert PermissionManager(store, max_questions=2).max_questions == 2
    with pytest.raises(ValueError, match="lowered, never raised"):
        PermissionManager(store, max_questions=MAX_QUESTIONS_PER_QUERY + 1)
