"""The text-matching data-flow heuristics (``hub.dataflow``): what they catch, and the known
evasions, each an ``xfail`` (strict: the day one passes, the table in the module must change)."""

from __future__ import annotations

import pytest

from hub.dataflow import carries, made_of, phrases

ANSWER = "Invoice 4,800.00 due to sarah.baker@gmail.com; the meeting moved to Friday 16 May"

CAUGHT = [
    # (situation, request)
    ("a distinctive token copied (an address)", "please pay sarah.baker@gmail.com"),
    ("a distinctive token copied (a number with a digit)", "amount: 4,800.00"),
    ("three words in a row copied", "note that the meeting moved to next week"),
]

EVASIONS = [
    # (evasion, request): the same data, not caught
    ("reformatted number", "amount: 4800"),
    ("paraphrase", "the meeting is now on Fri"),
    ("spelled-out digits", "on the sixteenth of May"),
    ("split token", "user sarah.baker at domain gmail dot com"),
    ("translation", "la réunion a été déplacée à vendredi"),
]


@pytest.mark.parametrize("situation, request_text", CAUGHT, ids=[c[0] for c in CAUGHT])
def test_copied_data_is_caught(situation, request_text):
    assert carries(ANSWER, request_text)


@pytest.mark.parametrize("evasion, request_text", EVASIONS, ids=[e[0] for e in EVASIONS])
@pytest.mark.xfail(strict=True, reason="best effort: text matching misses rewritten data (hub.dataflow's table)")
def test_known_evasion(evasion, request_text):
    assert carries(ANSWER, request_text)


def test_what_the_user_said_is_theirs():
    assert not carries(ANSWER, "pay sarah.baker@gmail.com", given="send it to sarah.baker@gmail.com")
    assert not carries(ANSWER, "hello there")


def test_made_of_and_phrases():
    assert made_of("sarah.baker@gmail.com", ANSWER) and not made_of("eve@attacker.io", ANSWER)
    assert {"recent heart surgery", "heart surgery"} <= phrases("recent heart surgery, asthma")
