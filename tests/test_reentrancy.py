"""A call chain that comes back to an app still at work (A -> B -> A), with real spokes.

metro_hail's spoke handles the query (it is busy until it answers); its agent calls
``relay``, an app that runs code, and relay's code calls metro_hail's functionality back.
A spoke serves one request at a time, so the hub must refuse that call, cleanly: at once,
before asking the user anything or touching what it keeps of metro_hail for the query (its
plan, what the user approved), so metro_hail carries on with its plan as if relay had not
tried.
"""

from __future__ import annotations

import json

import pytest

from helpers.templates.prompts import PLANNER_MARKER
from helpers.tools.tool_importer import ToolImporter
from tests.flow_helpers import audit, permissions, scripted, secgpt
from tests.sandbox_helpers import write_code_app

RIDE = {"start_point": "Main Street", "end_point": "Elm Avenue"}
QUERY = "What is the metro_hail fare from Main Street to Elm Avenue? Ask relay twice."
# relay's code, run for metro_hail: it calls metro_hail back, and prints what the hub answered.
CALL_BACK = ("from helpers.isc.messages import AppRequest\n"
             "r = hub.request(AppRequest(id=hub.next_id(), functionality='metro_hail',\n"
             "                           request=dict(start_point='Main Street', end_point='Elm Avenue')))\n"
             "print('first-done', r.type, getattr(r, 'code', ''), getattr(r, 'message', ''))")
SECOND = "print('second-done')"
# metro_hail's plan: two calls of relay, each taking its code from metro_hail's own result.
PLAN = json.dumps({"steps": [{"name": "metro_hail", "input": RIDE, "output": ""},
                             {"name": "run_code", "input": {"code": "<result_1>"}, "output": ""},
                             {"name": "run_code", "input": {"code": "<result_1>"}, "output": ""}]})
RULES = [
    {"when": {"system_contains": PLANNER_MARKER}, "then": {"content": PLAN}},
    {"when": {"context_contains": "second-done"}, "then": {"content": "Here is what I found: {tools}"}},
    {"when": {"context_contains": "first-done"}, "then": {"tool_calls": [{"name": "run_code",
                                                                          "args": {"code": SECOND}}]}},
    {"when": {"tools_include": ["run_code"]}, "then": {"tool_calls": [{"name": "run_code",
                                                                       "args": {"code": CALL_BACK}}]}},
]


@pytest.fixture
def relay_world(data_dir):
    """metro_hail next to ``relay`` (the sandbox app's code runner, under a name of its own)."""
    base = data_dir.parent / "catalogue"
    write_code_app(base, "relay")
    listing = base / "functionalities.json"
    listing.write_text(json.dumps({"installed_functionalities": ["metro_hail"],
                                   "installed_toolkits": {"relay": ["run_code"]}}))
    return scripted(data_dir.parent, RULES), ToolImporter(listing, extra_dirs=(base,))


def test_a_call_back_into_a_busy_app_is_refused_and_changes_nothing(launcher, relay_world):
    llm, apps = relay_world
    with secgpt(launcher, llm, consent="ask", decide=lambda dialog: "1", apps=apps) as hub:  # allow each, once
        answer = hub.answer(QUERY)
        events = audit(hub)
        asked = permissions(hub)
    assert answer.route == "metro_hail" and answer.error is None, answer
    # relay's call back was refused as one a busy spoke cannot take...
    assert "first-done error unavailable metro_hail is already busy in this call chain" in answer.text
    # ...before the user was asked about it, and before it reached metro_hail's spoke.
    assert not any(key == "relay->metro_hail" for _, key, _, _ in asked), asked
    assert [e["message"]["functionality"] for e in events if e["event"] == "to_spoke"
            and e["message"]["type"] == "app_request"] == ["run_code", "run_code"]
    # metro_hail's plan stood: its second planned call of relay is as expected as the first.
    assert "second-done" in answer.text
    assert asked and all(expected for _, _, expected, _ in asked), asked
    assert [key for _, key, _, _ in asked].count("metro_hail->relay") >= 2
