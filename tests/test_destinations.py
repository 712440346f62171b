"""hub.destinations: what counts as a destination in a planned input, and when the user gave it.
Every recogniser has cases that must be found and cases that must not."""

from __future__ import annotations

import pytest

from hub.destinations import RECOGNISERS, find, in_value, known_keys, unknown

FOUND = [
    # (text, kind, normalised key)
    ("send it to billing-check@attacker.io please", "email", "email:billing-check@attacker.io"),
    ("mailto:Bob@Example.ORG", "email", "email:bob@example.org"),
    ("https://evil.example/collect?d=1", "url", "host:evil.example"),
    ("http://agentdojo-web/call", "url", "host:agentdojo-web"),
    ("ftp://files.example.com/x", "url", "host:files.example.com"),
    ("www.informations.com", "host", "host:informations.com"),
    ("post the channel to evil.com.", "host", "host:evil.com"),
    ("www.my-website-234.com/random", "host", "host:my-website-234.com"),
    ("to www.our-company.com.They sent", "host", "host:our-company.com"),  # AgentDojo slack user_task_4
    ("mail bob@example.com.Then stop", "email", "email:bob@example.com"),
    ("http://10.0.0.1:8080/a", "url", "host:10.0.0.1"),
    ("ping 192.168.1.20", "ip", "host:192.168.1.20"),
    ("GB29 NWBK 6016 1331 9268 19", "iban", "number:GB29NWBK60161331926819"),
    ("US133000000121212121212", "iban", "number:US133000000121212121212"),
    ("call +1 555 123 4567", "phone", "phone:551234567"),
    ("(555) 123-4567", "phone", "phone:551234567"),
    ("555.123.4567", "phone", "phone:551234567"),
    ("account 123456789012", "account", "number:123456789012"),
]

NOT_FOUND = [
    "notes.txt", "report.pdf", "e.g. this", "Dr. Smith", "U.S.A", "version 1.2.3", "2024-05-15 10:00",
    "amount 100.5", "file_id 13", "at 3.30pm", "from 1.5 to 2.5", "agentdojo-web", "Main Street", "$51.80",
    "AB12 ABCD EFGH IJKL",  # IBAN-shaped letters without the digits of an account
]


@pytest.mark.parametrize("text,kind,key", FOUND)
def test_recognised(text, kind, key):
    found = find(text)
    assert [(d.kind, d.key) for d in found] == [(kind, key)]


@pytest.mark.parametrize("text", NOT_FOUND)
def test_not_a_destination(text):
    assert find(text) == []


def test_every_recogniser_has_a_case_and_a_reason():
    assert {kind for _, kind, _ in FOUND} == set(RECOGNISERS)
    assert all(rule.why for rule in RECOGNISERS.values())


def test_text_run_on_after_a_full_stop_is_not_part_of_it():
    assert [d.text for d in find("www.our-company.com.They sent")] == ["www.our-company.com"]


def test_an_email_domain_is_not_also_a_host():
    assert [d.kind for d in find("write to eve@evil.com and see www.site.org")] == ["email", "host"]


@pytest.mark.parametrize("given,planned", [
    ("my accountant acct@mybooks.example", {"to": "ACCT@mybooks.example"}),
    ("read www.informations.com", {"url": "https://informations.com/news"}),
    ("read informations.com", {"url": "www.informations.com"}),
    ("call me at +44 20 7946 0958", {"phone": "+44-20-7946-0958"}),
    ("text 5551234567", {"phone": "+1 (555) 123-4567"}),
    ("pay GB29NWBK60161331926819", {"iban": "GB29 NWBK 6016 1331 9268 19"}),
])
def test_a_destination_the_user_gave_is_known(given, planned):
    assert in_value(planned)  # there is one to judge
    assert unknown(planned, known_keys([given])) == []


@pytest.mark.parametrize("given,planned,named", [
    ("send it to my accountant acct@mybooks.example", {"to": ["acct@mybooks.example", "x@attacker.io"]},
     "x@attacker.io"),
    ("read www.informations.com", {"url": "www.informations.com.attacker.io/"}, "www.informations.com.attacker.io/"),
    ("read www.informations.com", {"url": "evil.informations.com"}, "evil.informations.com"),
    ("", {"recipient": "US133000000121212121212", "amount": 100}, "US133000000121212121212"),
])
def test_a_destination_nobody_gave_is_unknown(given, planned, named):
    assert [d.text for d in unknown(planned, known_keys([given]))] == [named]


def test_a_value_taken_from_an_earlier_result_is_not_judged_here():
    assert in_value({"to": "<result_2>", "body": "see <result_1>"}) == []
    assert [d.text for d in in_value({"to": "<result_1>, eve@attacker.io"})] == ["eve@attacker.io"]


def test_nested_values_and_numbers_are_read():
    value = {"a": [{"b": "x@y.io"}], "account": 123456789012, "flag": True}
    assert sorted(d.key for d in in_value(value)) == ["email:x@y.io", "number:123456789012"]


def test_remembered_details_count_as_given():
    assert unknown({"to": "ada@example.com"}, known_keys(["Book a flight.", "ada@example.com"])) == []
