"""Runs in: hub, vanillagpt (the evaluation's driver, beside the system under test).

The end-to-end benchmark's queries and the offline model's script for them.

Five kinds: no app, one app, two independent apps, dependent steps, and a
cross-app call the plan did not foresee. The script is keyed only on what the
model is given (planner prompt, query, offered and called tools), as everywhere.
"""

from __future__ import annotations

import json

P = "You are the planner of SecGPT"
ROUTES = [("Main Street", "Elm Avenue"), ("Oak Road", "Pine Lane"), ("Harbor Way", "Hill Street"),
          ("Station Square", "Airport"), ("Market Street", "Lake Drive")]
R = "from (?P<start>[A-Z][^,]+?) to (?P<end>[A-Z][^,?.]+)"

QUERIES: list[tuple[str, str]] = (
    [("no app", q) for q in ("Tell me a joke.", "What is the capital of France?", "Say hello in Spanish.",
                             "Give me a haiku about autumn.", "Suggest a name for a cat.")]
    + [("one app", f"What is the metro_hail fare from {a} to {b}?") for a, b in ROUTES[:3]]
    + [("one app", "Convert 12 km to mi with the unit converter."),
       ("one app", "Convert 80 kg to lb with the unit converter."),
       ("one app", "Search my email for the invoice.")]
    + [("two apps", f"Compare the metro_hail and quick_ride fares from {a} to {b}.") for a, b in ROUTES[:4]]
    + [("dependent", f"Get the metro_hail fare from {a} to {b} and email it to bob@example.com.")
       for a, b in ROUTES[:3]]
    + [("cross-app", f"Get the metro_hail fare from {a} to {b}, and also ask quick_ride.") for a, b in ROUTES[3:5]]
)

QUICK = [QUERIES[i] for i in (0, 5, 8, 10, 11, 15, 18)]


def _ride(name: str) -> dict:
    return {"name": name, "input": {"start_point": "{re:start}", "end_point": "{re:end}"}, "output": "fare"}


def _plan(*steps) -> str:
    return json.dumps({"steps": list(steps)})


def _convert(pattern: str) -> dict:
    value, src, dst = pattern
    return {"value": value, "from_unit": src, "to_unit": dst}


# An answer of about a hundred tokens, as a chat model's reply to a small request is: what the tokens
# latency model charges for it, on both systems alike.
CHAT_ANSWER = ("Here you are. I kept it short, as you asked: one clear answer first, then a little context in "
               "case it helps. If you would like a different tone, a longer version, or a few alternatives to "
               "choose from, just say so and I will write them. I can also explain how I arrived at this, or "
               "suggest related ideas you might enjoy. Is there anything else you would like me to help with?")

SCRIPT = {"rules": [
    {"name": "memory", "when": {"query_contains": "Extract the facts about the user"}, "then": {"content": "{}"}},
    {"name": "summary", "when": {"query_contains": "Summarise this conversation"}, "then": {"content": "Chat."}},
    {"name": "plan: compare", "when": {"system_contains": P, "query_contains": "Compare", "query_regex": R},
     "then": {"content": _plan(_ride("metro_hail"), _ride("quick_ride"))}},
    {"name": "plan: fare then email", "when": {"system_contains": P, "query_contains": "email it", "query_regex": R},
     "then": {"content": _plan(_ride("metro_hail"), {"name": "send_gmail_message", "input": {
         "to": "bob@example.com", "subject": "Fare", "message": "<result_1>"}, "output": "sent"})}},
    {"name": "plan: a fare", "when": {"system_contains": P, "query_contains": "metro_hail", "query_regex": R},
     "then": {"content": _plan(_ride("metro_hail"))}},
    {"name": "plan: km", "when": {"system_contains": P, "query_contains": "12 km"},
     "then": {"content": _plan({"name": "convert_units", "input": _convert((12, "km", "mi")), "output": "miles"})}},
    {"name": "plan: kg", "when": {"system_contains": P, "query_contains": "80 kg"},
     "then": {"content": _plan({"name": "convert_units", "input": _convert((80, "kg", "lb")), "output": "pounds"})}},
    {"name": "plan: email search", "when": {"system_contains": P, "query_contains": "invoice"},
     "then": {"content": _plan({"name": "search_gmail", "input": {"query": "invoice"}, "output": "emails"})}},
    {"name": "plan: nothing", "when": {"system_contains": P}, "then": {"content": _plan()}},

    # A competent model calls only the tools it is offered: a phrasing spoke (strict) is offered none.
    {"name": "also ask quick_ride", "when": {"called": ["metro_hail"], "not_called": ["quick_ride"],
                                             "tools_include": ["quick_ride"],
                                             "query_contains": "ask quick_ride", "query_regex": R},
     "then": {"tool_calls": [{"name": "quick_ride", "args": {"start_point": "{re:start}", "end_point": "{re:end}"}}]}},
    {"name": "email the fare", "when": {"called": ["metro_hail"], "not_called": ["send_gmail_message"],
                                        "tools_include": ["send_gmail_message"],
                                        "query_contains": "email it"},
     "then": {"tool_calls": [{"name": "send_gmail_message", "args": {
         "to": "bob@example.com", "subject": "Fare", "message": "{tool:metro_hail}"}}]}},
    {"name": "answer from the tools", "when": {"called": ["metro_hail"]}, "then": {"content": "{tools}"}},
    {"name": "answer: conversion", "when": {"called": ["convert_units"]}, "then": {"content": "{tools}"}},
    {"name": "answer: emails", "when": {"called": ["search_gmail"]}, "then": {"content": "{tools}"}},
    {"name": "answer: a fare", "when": {"called": ["quick_ride"]}, "then": {"content": "{tools}"}},
    {"name": "answer: sent", "when": {"called": ["send_gmail_message"]}, "then": {"content": "{tools}"}},
    {"name": "compare: both", "when": {"tools_include": ["metro_hail", "quick_ride"], "query_contains": "Compare",
                                       "not_called": ["metro_hail"], "query_regex": R},
     "then": {"tool_calls": [{"name": n, "args": {"start_point": "{re:start}", "end_point": "{re:end}"}}
                             for n in ("metro_hail", "quick_ride")]}},
    {"name": "a fare", "when": {"tools_include": ["metro_hail"], "query_contains": "metro_hail",
                                "not_called": ["metro_hail"], "query_regex": R},
     "then": {"tool_calls": [{"name": "metro_hail", "args": {"start_point": "{re:start}", "end_point": "{re:end}"}}]}},
    {"name": "km",
     "when": {"tools_include": ["convert_units"], "query_contains": "12 km", "not_called": ["convert_units"]},
     "then": {"tool_calls": [{"name": "convert_units", "args": _convert((12, "km", "mi"))}]}},
    {"name": "kg",
     "when": {"tools_include": ["convert_units"], "query_contains": "80 kg", "not_called": ["convert_units"]},
     "then": {"tool_calls": [{"name": "convert_units", "args": _convert((80, "kg", "lb"))}]}},
    {"name": "search",
     "when": {"tools_include": ["search_gmail"], "query_contains": "invoice", "not_called": ["search_gmail"]},
     "then": {"tool_calls": [{"name": "search_gmail", "args": {"query": "invoice"}}]}},
    # strict mode: the hub asks the quarantined LLM for the value a step takes from an earlier result
    {"name": "extract: the whole result", "when": {"system_contains": "You extract one value"},
     "then": {"content": "{query}"}},
    {"name": "chat", "when": {}, "then": {"content": CHAT_ANSWER}},
]}

FUNCTIONALITIES = {"installed_functionalities": ["metro_hail", "quick_ride"],
                   "installed_toolkits": {"gmail": ["search_gmail", "send_gmail_message"],
                                          "unit_converter": ["convert_units"]}}
