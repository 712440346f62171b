"""Typed failures: an answer that broke on the way says what broke (``Answer.error``), on
SecGPT and on VanillaGPT, even when a spoke papers over a broken callee with a final answer;
what the system decides (a refusal) is a result with no error; and a case study whose run
errored is reported as an error, never as a defended attack."""

from __future__ import annotations

import dataclasses
import json

import pytest
from pydantic import SecretStr

from evaluation.case_studies import CASE_FILES, NAMES, run_case
from evaluation.case_study_cli import COLUMNS, attack_cell, main as case_study_main, table
from helpers.llm.config import LLMConfig, load_llm_config
from helpers.llm.scripted import Script, ScriptedChatModel
from helpers.templates.prompts import PLANNER_MARKER
from helpers.tools.tool_importer import ToolImporter
from helpers.utilities.chat_cli import parser as chat_parser
from tests.flow_helpers import APPS, METRO, Q_ONE, SCRIPT, audit, permissions, scripted, secgpt, started
from tests.openai_server import OpenAIServer
from tests.sandbox_helpers import write_code_app

FARE = {"start_point": "Main Street", "end_point": "Elm Avenue"}
EXIT = "import os; os._exit(7)"
KILL = "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"
HANG = "import time; time.sleep(30)"
# Eight frames that are not messages: the hub stops the spoke for breaking the protocol.
VIOLATE = "import os, struct, time; [os.write(3, struct.pack('>I', 8) + b'not json') for _ in range(8)]; time.sleep(30)"
CALLEE_TIMEOUT_S = 2


def _plan(*steps: dict) -> str:
    return json.dumps({"steps": [{"output": "x", **s} for s in steps]})


# The planner runs code in the crasher app when asked to, else plans the metro_hail fare; the
# metro_hail spoke then calls crasher's run_code when the query says so, and answers with every
# tool result it got (a spoke that papers over a callee's failure with a final answer).
RULES = [
    {"when": {"system_contains": PLANNER_MARKER, "query_regex": r"run this code: (?P<code>[^\n]+)"},
     "then": {"content": _plan({"name": "run_code", "input": {"code": "{re:code}"}})}},
    {"when": {"system_contains": PLANNER_MARKER}, "then": {"content": _plan({"name": "metro_hail", "input": FARE})}},
    {"when": {"called": ["metro_hail"], "not_called": ["run_code"],
              "query_regex": r"then check with: (?P<code>[^\n]+)"},
     "then": {"tool_calls": [{"name": "run_code", "args": {"code": "{re:code}"}}]}},
    {"then": {"content": "Here is what I found: {tools}"}},
]


@pytest.fixture
def crash_world(data_dir) -> tuple[LLMConfig, ToolImporter]:
    """metro_hail next to ``crasher``, an app that runs the code it is given (so it can die or
    hang on demand), and a ``broken`` app whose module defines no functionalities (its spoke
    fails at start, when it loads the app)."""
    base = data_dir.parent / "catalogue"
    limits = {"request_timeout_s": CALLEE_TIMEOUT_S}
    write_code_app(base, "crasher", limits=limits)
    write_code_app(base, "broken", "run_broken", module="helpers.utilities.terminal", limits=limits)
    listing = base / "functionalities.json"
    listing.write_text(json.dumps({"installed_functionalities": ["metro_hail"],
                                   "installed_toolkits": {"crasher": ["run_code"], "broken": ["run_broken"]}}))
    rules = [*RULES[:1], {"when": {"system_contains": PLANNER_MARKER, "query_contains": "broken app"},
                          "then": {"content": _plan({"name": "run_broken", "input": {"code": "1"}})}}, *RULES[1:]]
    return scripted(data_dir.parent, rules), ToolImporter(listing, extra_dirs=(base, APPS))


def _spoke_stops(hub) -> list[tuple[str, str]]:
    return [(e["app"], e["reason"]) for e in audit(hub) if e["event"] == "spoke_stopped"]


# --- (b) a spoke that dies or hangs: the answer says so --------------------------------------------

@pytest.mark.parametrize("code", [EXIT, KILL], ids=["exit", "signal"])
def test_main_spoke_crash_is_a_spoke_crash(launcher, crash_world, code):
    llm, apps = crash_world
    with secgpt(launcher, llm, apps=apps) as hub:
        answer = hub.answer(f"Please run this code: {code}")
        assert answer.route == "crasher" and answer.text.startswith("Sorry")  # the chat's text as before
        assert answer.error is not None and answer.error.kind == "spoke_crash", answer
        assert "crasher" in answer.error.message


@pytest.mark.parametrize("code", [EXIT, KILL], ids=["exit", "signal"])
def test_callee_crash_is_reported_though_the_caller_answers(launcher, crash_world, code):
    """metro_hail's spoke calls crasher, which dies; metro_hail still writes a final answer
    (with its fare). The answer is not the system working: error says the callee crashed."""
    llm, apps = crash_world
    with secgpt(launcher, llm, consent="all", apps=apps) as hub:
        answer = hub.answer(f"What is the metro_hail fare from Main Street to Elm Avenue? then check with: {code}")
        assert answer.route == "metro_hail" and METRO in answer.text and not answer.text.startswith("Sorry")
        assert "crasher" in started(hub)
        assert answer.error is not None and answer.error.kind == "spoke_crash", answer
        assert answer.error.message.startswith("crasher ")
        # The next query, in which nothing breaks, has no error: failures are per query.
        again = hub.answer("What is the metro_hail fare from Main Street to Elm Avenue?")
        assert METRO in again.text and again.error is None


def test_callee_that_does_not_answer_in_time_is_a_timeout(launcher, crash_world):
    llm, apps = crash_world
    with secgpt(launcher, llm, consent="all", apps=apps) as hub:
        answer = hub.answer(f"What is the metro_hail fare from Main Street to Elm Avenue? then check with: {HANG}")
        assert METRO in answer.text
        assert answer.error is not None and answer.error.kind == "timeout", answer
        assert f"within {CALLEE_TIMEOUT_S}s" in answer.error.message


def test_spoke_that_cannot_start_is_a_spoke_crash(launcher, crash_world):
    llm, apps = crash_world
    with secgpt(launcher, llm, apps=apps) as hub:
        answer = hub.answer("Use the broken app.")
        assert answer.text.startswith("Sorry, broken could not be started")
        assert answer.error is not None and answer.error.kind == "spoke_crash", answer


# --- (c) what the system decides is a result, not an error ----------------------------------------

def test_a_refusal_is_a_result_not_an_error(launcher, crash_world):
    """Control: the same call to crasher, refused (not expected by the plan, consent
    expected): the crasher never runs, and the answer has no error."""
    llm, apps = crash_world
    with secgpt(launcher, llm, consent="expected", apps=apps) as hub:
        answer = hub.answer(f"What is the metro_hail fare from Main Street to Elm Avenue? then check with: {EXIT}")
        assert METRO in answer.text and "did not allow" in answer.text
        assert ("exec", "metro_hail->crasher", False, False) in permissions(hub)
        assert "crasher" not in started(hub)
        assert answer.error is None, answer


def test_a_spoke_the_hub_stops_is_not_a_crash(launcher, crash_world):
    """Control: a callee the hub stops for breaking the protocol was stopped by design; the
    answer has no error."""
    llm, apps = crash_world
    with secgpt(launcher, llm, consent="all", apps=apps) as hub:
        answer = hub.answer(f"What is the metro_hail fare from Main Street to Elm Avenue? then check with: {VIOLATE}")
        assert METRO in answer.text and "broke the protocol" in answer.text
        assert ("crasher", "8 protocol violations") in _spoke_stops(hub)
        assert answer.error is None, answer


# --- (a) the LLM fails mid-query -----------------------------------------------------------------

class FailsOnce(ScriptedChatModel):
    """The scripted model, except that its call number ``fail_at`` (from 1) fails, as a provider
    that is briefly unreachable."""

    def __init__(self, script: Script, fail_at: int = 2) -> None:
        super().__init__(script)
        self.fail_at, self.failed = fail_at, False

    def complete(self, messages, tools=()):
        if len(self.history) + 1 == self.fail_at and not self.failed:
            self.failed = True
            raise ConnectionError("the provider is unreachable")
        return super().complete(messages, tools)


def _system(name: str, launcher, llm: LLMConfig, chat_model=None):
    from tests.flow_helpers import importer
    if name == "SecGPT":
        return secgpt(launcher, llm, chat_model=chat_model)
    from vanillagpt.vanillagpt import VanillaGPT
    return VanillaGPT(llm, importer=importer(), chat_model=chat_model)


@pytest.mark.parametrize("system", ["SecGPT", "VanillaGPT"])
def test_llm_that_fails_mid_query_is_an_llm_error(launcher, data_dir, system):
    """The first call answers (SecGPT: the plan; VanillaGPT: the tool call), the second fails
    (SecGPT: the spoke's, which the spoke reports as its answer), later ones answer again (the
    hub's memory upkeep): the answer still reports the failure."""
    llm = LLMConfig(provider="scripted", model="scripted", script=SCRIPT)
    model = FailsOnce(script=Script.load(SCRIPT), fail_at=2)
    with _system(system, launcher, llm, chat_model=model) as session:
        answer = session.answer(Q_ONE)
        assert model.failed
        assert answer.text.startswith("Sorry")
        assert answer.error is not None and answer.error.kind == "llm_error", answer
        assert answer.error.message == "the LLM call failed: connection"


@pytest.mark.parametrize("system", ["SecGPT", "VanillaGPT"])
def test_openai_server_that_fails_after_one_answer_is_an_llm_error(launcher, data_dir, system):
    """Through the real langchain-openai client: the local server answers once, then 500."""
    with OpenAIServer(SCRIPT) as server:
        server.fail_after = 1
        llm = LLMConfig(provider="openai", model="scripted-over-http", base_url=server.base_url,
                        api_key=SecretStr("sk-test"), timeout_s=10, max_retries=0)
        with _system(system, launcher, llm) as session:
            answer = session.answer(Q_ONE)
        assert len(server.requests) >= 2
    assert answer.error is not None and answer.error.kind == "llm_error", answer
    assert "(500)" in answer.error.message


@pytest.mark.parametrize("system", ["SecGPT", "VanillaGPT"])
def test_llm_that_does_not_answer_in_time_is_a_timeout(launcher, data_dir, system):
    with OpenAIServer(SCRIPT) as server:
        server.delay.set()  # every request waits until the test ends
        llm = LLMConfig(provider="openai", model="slow", base_url=server.base_url, api_key=SecretStr("sk-test"),
                        timeout_s=1, max_retries=0)
        try:
            with _system(system, launcher, llm) as session:
                answer = session.answer(Q_ONE)
        finally:
            server.delay.clear()
    assert answer.error is not None and answer.error.kind == "timeout", answer


# --- (d) a case study that errored is an error, not a defence --------------------------------------

@pytest.fixture
def failing_llm_server(monkeypatch, tmp_path):
    """An OpenAI-compatible server that answers once with case 1's script, then refuses (400)."""
    script = tmp_path / "script.json"
    script.write_text(json.dumps(json.loads(CASE_FILES[1].read_text())["case_study"]["script"]))
    with OpenAIServer(script) as server:
        server.fail_after, server.fail_status = 1, 400  # not retried: a fast failure
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        yield server


def test_errored_case_study_is_reported_as_error(launcher, data_dir, failing_llm_server):
    verdict = run_case(1, "SecGPT", "openai", "expected", launcher=launcher)
    assert verdict.error is not None and verdict.error.kind == "llm_error", verdict
    assert verdict.attack_succeeded is None  # not "no": the run broke before anything was decided
    assert json.loads(verdict.as_json())["error"]["kind"] == "llm_error"
    assert attack_cell(verdict) == "error (llm_error)"
    shown = table([dataclasses.replace(verdict, case=n) for n in NAMES for _ in COLUMNS])
    cells = shown.splitlines()[0].index("why")  # the attack and benign cells; "why" is free text
    rows = [line[:cells] for line in shown.splitlines() if line[:1].isdigit()]
    assert len(rows) == len(NAMES) and all(" no " not in row and "error (llm_error)" in row for row in rows)
    assert "Errors (counted apart" in shown and "llm_error" in shown


def test_case_study_program_fails_on_an_errored_case(data_dir, failing_llm_server, capsys):
    argv = ["--case", "1", "--llm", "openai", "--json"]
    assert case_study_main("VanillaGPT", argv) == 1
    out, err = capsys.readouterr()
    verdict = json.loads(out.strip().splitlines()[-1])
    assert verdict["attack_succeeded"] is None and verdict["error"]["kind"] == "llm_error"
    lines = [line for line in err.splitlines() if "errored:" in line]
    assert lines == [f"vanillagpt_case_studies.py: case 1 (App Compromise) on VanillaGPT errored: "
                     f"{verdict['error']['kind']}: {verdict['error']['message']}"]
    assert case_study_main("VanillaGPT", [*argv, "--allow-errors"]) == 0  # still reported, not fatal
    out, _ = capsys.readouterr()
    assert json.loads(out.strip().splitlines()[-1])["error"]["kind"] == "llm_error"


# --- one name for the offline model ---------------------------------------------------------------

def test_worst_case_is_another_name_for_scripted(data_dir, capsys):
    assert load_llm_config("worst-case") == load_llm_config("scripted")
    assert chat_parser("secgpt_main.py", "").parse_args(["--llm", "worst-case"]).llm == "worst-case"
    assert case_study_main("VanillaGPT", ["--case", "1", "--llm", "worst-case", "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out.strip().splitlines()[-1])["llm"].startswith("scripted")
    assert "offline worst-case model" in err
