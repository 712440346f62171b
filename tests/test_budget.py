"""Budgets: what one app may make the hub spend in one query (LLM calls, prompt bytes, audit
bytes, time), set in its manifest within the hub's maxima. A real spoke asks; the hub refuses
the request that would go over and every later one of that query, without stopping the spoke."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from helpers.sandbox import budget as limits
from helpers.sandbox.budget import Budget
from hub import audit as audit_module
from hub.audit import AuditLog, read_audit
from hub.budget import BudgetExceeded, BudgetLedger
from tests.hub_harness import ASK_LLM, operator_world

# --- the manifest block ----------------------------------------------------------------------

@pytest.mark.parametrize("field,maximum", [("llm_calls", limits.MAX_LLM_CALLS), ("prompt_kib", limits.MAX_PROMPT_KIB),
                                           ("audit_kib", limits.MAX_AUDIT_KIB)])
def test_a_manifest_sets_a_budget_only_within_the_maximum(field, maximum):
    assert getattr(Budget(**{field: maximum}), field) == maximum
    with pytest.raises(ValidationError, match="less than or equal"):
        Budget(**{field: maximum + 1})


def test_unknown_budget_keys_are_refused():
    with pytest.raises(ValidationError, match="Extra inputs"):
        Budget(llm_calls=1, dollars=5)


def _manifest(tmp_path, **extra):
    from helpers.tools.tool_importer import ToolImporter
    (tmp_path / "manifests").mkdir(exist_ok=True)
    (tmp_path / "specifications").mkdir(exist_ok=True)
    (tmp_path / "manifests" / "frugal.json").write_text(json.dumps(
        {"name": "frugal", "functionalities": {"frugal": "x"}, **extra}))
    (tmp_path / "specifications" / "frugal.json").write_text(json.dumps(
        {"description": "x", "annotation_text": "Be brief."}))
    config = tmp_path / "f.json"
    config.write_text(json.dumps({"enabled_annotations": ["frugal"]}))
    return ToolImporter(config, extra_dirs=(tmp_path,))


def test_manifest_budget_reaches_the_app_spec(tmp_path, data_dir):
    spec = _manifest(tmp_path, budget={"llm_calls": 3, "prompt_kib": 64}).app_spec("frugal")
    assert spec.budget == Budget(llm_calls=3, prompt_kib=64)
    assert _manifest(tmp_path).app_spec("frugal").budget == Budget()


def test_manifest_request_timeout_above_the_hub_maximum_is_refused(tmp_path, data_dir):
    from helpers.utilities.errors import ConfigError
    with pytest.raises(ConfigError, match=r"frugal\.json: limits: .*request_timeout_s 3600 is above the hub's "
                                          r"maximum of 300 s; lower it"):
        _manifest(tmp_path, limits={"request_timeout_s": 3600})


# --- the ledger ------------------------------------------------------------------------------------

def test_ledger_refuses_the_call_that_would_go_over_then_everything_until_the_next_query():
    told = []
    ledger = BudgetLedger(notify=told.append)
    with ledger.charging("app", Budget(llm_calls=2)):
        ledger.charge_llm("app", 10)
        ledger.charge_llm("app", 10)
        with pytest.raises(BudgetExceeded, match=r"budget_exceeded: app used its budget of 2 LLM calls.*"
                                                 r"budget\.llm_calls, up to 256"):
            ledger.charge_llm("app", 10)
    assert ledger.refusal("app") and ledger.refusal("other") is None
    assert len(told) == 1
    assert ledger.new_query()["app"].llm_calls == 2
    assert ledger.refusal("app") is None


# --- real spokes ---------------------------------------------------------------------------------------

def test_llm_calls_over_budget_are_refused_and_the_spoke_lives_on(launcher, data_dir):
    with operator_world(launcher, data_dir) as world:
        outcome, spoke = world.run(ASK_LLM.format(n=40, size=100), budget=Budget(llm_calls=5))
        codes, message = outcome.response["stdout"].splitlines()
        assert codes.split() == ["llm_response"] * 5 + ["rate_limited"] * 35
        assert message.startswith("budget_exceeded: spender used its budget of 5 LLM calls")
        assert world.llm.calls == 5
        told = [text for kind, text in world.said if kind == "budget"]
        assert len(told) == 1 and told[0] == message  # the user is told once, in one line
        assert not [e for e in world.events("spoke_stopped") if "budget" in e["reason"]]
        # A new query: a new budget.
        outcome, _ = world.run(ASK_LLM.format(n=1, size=100), budget=Budget(llm_calls=5))
        assert outcome.response["stdout"].split()[0] == "llm_response"


def test_control_without_a_low_budget_every_call_reaches_the_provider(launcher, data_dir):
    """Control: the same spoke code with the hub's maximum as its budget is served 40 times."""
    with operator_world(launcher, data_dir) as world:
        outcome, _ = world.run(ASK_LLM.format(n=40, size=100), budget=Budget(llm_calls=limits.MAX_LLM_CALLS))
        assert outcome.response["stdout"].split()[:40] == ["llm_response"] * 40 and world.llm.calls == 40


def test_prompt_bytes_over_budget_are_refused(launcher, data_dir):
    with operator_world(launcher, data_dir) as world:
        outcome, _ = world.run(ASK_LLM.format(n=10, size=1000), budget=Budget(prompt_kib=4))
        codes, message = outcome.response["stdout"].splitlines()
        assert codes.split() == ["llm_response"] * 4 + ["rate_limited"] * 6
        assert "4 KiB of LLM prompts" in message and world.llm.calls == 4


def test_other_requests_are_refused_after_an_overrun_in_the_same_query(launcher, data_dir):
    code = ASK_LLM.format(n=2, size=10) + (
        "r = hub.request(MemoryRequest(id=hub.next_id(), op='load', kind='history'))\nprint(r.code)\n")
    code = "from helpers.isc.messages import MemoryRequest\n" + code
    with operator_world(launcher, data_dir) as world:
        outcome, _ = world.run(code, budget=Budget(llm_calls=1))
        assert outcome.response["stdout"].splitlines()[-1] == "rate_limited"


SAVE_HISTORY = """
from helpers.isc.messages import MemoryRequest
for i in range(12):
    r = hub.request(MemoryRequest(id=hub.next_id(), op="save", kind="history",
                                  value=[{"role": "user", "content": "q%d" % i},
                                         {"role": "assistant", "content": "a"}]))
    print(getattr(r, "code", r.type), getattr(r, "message", "")[:60])
"""


@pytest.mark.parametrize("calls,summaries", [(0, 0), (32, 1)], ids=["no_budget_left", "control_default"])
def test_summaries_set_off_by_an_apps_history_saves_are_charged_to_it(launcher, data_dir, calls, summaries):
    """Saving history past the window makes the hub summarise it with its LLM: that call is the app's."""
    with operator_world(launcher, data_dir) as world:
        outcome, _ = world.run(SAVE_HISTORY, budget=Budget(llm_calls=calls))
        lines = outcome.response["stdout"].splitlines()
        assert world.llm.calls_by_purpose["memory"] == summaries
        if summaries:
            assert all(line.startswith("memory_response") for line in lines)
        else:
            assert lines[10].startswith("rate_limited budget_exceeded: spender used its budget of 0 LLM")


def test_audit_bytes_over_budget_stop_being_written(launcher, data_dir):
    with operator_world(launcher, data_dir) as world:
        outcome, _ = world.run(ASK_LLM.format(n=200, size=2000), budget=Budget(audit_kib=64))
        codes = outcome.response["stdout"].splitlines()[0].split()
        assert "rate_limited" in codes and world.llm.calls < 40
        world.run("print(1)", name="other")  # the next query: the last one's spending is recorded
        lines = [line for line in world.audit.path.read_text().splitlines() if '"app": "spender"' in line]
        written = sum(len(line.encode()) + 1 for line in lines
                      if json.loads(line)["event"] not in audit_module.ALWAYS_KEPT)
        assert written <= 64 * 1024
        spent = [e for e in world.events("budget_spent") if e["app"] == "spender"]
        assert spent and spent[0]["audit_dropped"] > 0 and spent[0]["exceeded"].startswith("budget_exceeded")
        assert [e["budget"] for e in world.events("budget_exceeded")] == ["audit_kib"]


def test_request_timeout_is_capped_by_the_hub(launcher, data_dir, monkeypatch):
    """A manifest's request_timeout_s (up to 3600 in ResourceLimits) is cut to the hub's maximum."""
    from helpers.sandbox.app_spec import AppSpec
    from helpers.sandbox.policy import ResourceLimits
    from helpers.sandbox.sandbox import SANDBOX_APP
    monkeypatch.setattr("hub.broker.MAX_REQUEST_TIMEOUT_S", 1.0)  # the real maximum (300 s) is too long to wait
    with operator_world(launcher, data_dir) as world:
        spoke = world.broker.start(AppSpec(name="sleeper", module=SANDBOX_APP.module,
                                           limits=ResourceLimits(request_timeout_s=3600)))
        outcome = world.broker.call(spoke, "run_code", {"code": "import time; time.sleep(30)"})
        assert outcome.code == "timeout" and "within 1s" in outcome.message


# --- audit: large bodies -----------------------------------------------------------------------------

def test_large_bodies_are_audited_as_digest_and_size(tmp_path):
    import hashlib
    log = AuditLog(tmp_path / "a.jsonl")
    body = "é" * 10_000
    log.record("from_spoke", app="x", message={"type": "http_response", "body": body, "status": 200})
    log.record("from_spoke", app="x", message={"many": ["y" * 4000] * 200})
    log.close()
    first, second = read_audit(tmp_path / "a.jsonl")
    assert first["message"]["body"] == {"sha256": hashlib.sha256(body.encode()).hexdigest(),
                                        "size": 20_000, "head": "é" * 256}
    assert first["message"]["status"] == 200
    assert len((tmp_path / "a.jsonl").read_text().splitlines()[1]) <= audit_module.ENTRY_LIMIT
    assert set(second["message"]) == {"sha256", "size", "head"}


def test_a_flood_of_large_prompts_costs_the_audit_log_little(launcher, data_dir):
    """The issue's attack: one call wrote 125 MiB of audit log. Here 12 prompts of 300 KB (3.6 MB
    sent) leave a few KiB in the log."""
    with operator_world(launcher, data_dir) as world:
        before = world.audit.path.stat().st_size
        outcome, _ = world.run(ASK_LLM.format(n=12, size=300_000))
        assert outcome.response["stdout"].split()[:12] == ["llm_response"] * 12
        assert world.audit.path.stat().st_size - before < 64 * 1024


def test_control_without_digests_the_same_flood_is_written_whole(launcher, data_dir, monkeypatch):
    monkeypatch.setattr(audit_module, "BODY_LIMIT", 10**9)
    monkeypatch.setattr(audit_module, "ENTRY_LIMIT", 10**9)
    with operator_world(launcher, data_dir) as world:
        before = world.audit.path.stat().st_size
        world.run(ASK_LLM.format(n=12, size=300_000), budget=Budget(audit_kib=limits.MAX_AUDIT_KIB))
        assert world.audit.path.stat().st_size - before > 12 * 300_000


def test_an_overrun_is_one_line_on_the_terminal_even_without_debug(capsys):
    import argparse

    from helpers.utilities.chat_cli import Chat
    chat = Chat("SecGPT", argparse.Namespace(debug=False, consent="expected"), interactive=False)
    chat.emit("llm", "spender asks the LLM")  # ordinary steps stay hidden without /debug
    chat.emit("budget", "budget_exceeded: spender used its budget of 5 LLM calls\x1b[2J")
    assert capsys.readouterr().out == "  [budget] budget_exceeded: spender used its budget of 5 LLM calls\n"
