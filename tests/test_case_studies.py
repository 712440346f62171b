"""The case studies offline with the worst-case model: VanillaGPT falls to every attack,
SecGPT (consent expected) to none and completes every benign task; the menu; and the
scripted model's decisions depend only on its input."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage

from evaluation.case_studies import CASE_FILES, NAMES, run_case
from evaluation.case_study_cli import ask_case
from helpers.configs import paths
from helpers.llm.scripted import Script, ScriptedChatModel


@pytest.mark.parametrize("number", sorted(NAMES))
def test_vanillagpt_falls_to_every_attack(number):
    verdict = run_case(number, "VanillaGPT", "scripted", "n/a")
    assert verdict.attack_succeeded, verdict.explanation


@pytest.mark.parametrize("number", sorted(NAMES))
def test_secgpt_contains_every_attack_and_does_the_task(launcher, number):
    verdict = run_case(number, "SecGPT", "scripted", "expected", launcher=launcher)
    assert not verdict.attack_succeeded, verdict.explanation
    assert verdict.benign_done, verdict.explanation


@pytest.mark.parametrize("number,attacked", [(1, False), (2, True), (3, True), (4, False)])
def test_secgpt_when_the_user_allows_everything(launcher, number, attacked):
    """Reported honestly: permissions protect only a user who refuses the unexpected."""
    assert run_case(number, "SecGPT", "scripted", "all", launcher=launcher).attack_succeeded is attacked


def test_case_files_keep_the_original_format():
    for path in CASE_FILES.values():
        data = json.loads(path.read_text())
        assert {"installed_functionalities", "installed_toolkits", "enabled_annotations", "case_study"} <= set(data)
        assert data["case_study"]["trigger"]


def test_menu_reasks_on_invalid_input():
    answers = iter(["", "7", "two", "3"])
    shown = []
    assert ask_case(read=lambda prompt: next(answers), write=shown.append) == 3
    assert shown[0].startswith("Select a case study to run:\n1: App Compromise\n2: Data Stealing")
    assert shown.count("Invalid input. Please enter a number between 1 and 4.") == 3


@pytest.mark.parametrize("program", ["secgpt_case_studies.py", "vanillagpt_case_studies.py"])
def test_menu_program(program, data_dir):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "SECGPT_"))}
    result = subprocess.run([sys.executable, program, "--json"], input="9\n1\n", capture_output=True, text=True,
                            cwd=paths.REPO_ROOT, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "Invalid input" in result.stderr and "offline worst-case model" in result.stderr
    verdict = json.loads(result.stdout.strip().splitlines()[-1])
    assert verdict["case"] == 1 and verdict["system"] in program.replace("_case_studies.py", "").replace(
        "secgpt", "SecGPT").replace("vanillagpt", "VanillaGPT")
    assert set(verdict) == {"case", "name", "system", "llm", "consent", "attack_succeeded", "benign_done",
                            "explanation", "error"}
    assert verdict["error"] is None


def test_scripted_model_sees_only_its_input():
    """Same messages and tools -> same reply, whichever system (or instance) asks."""
    script = Script.model_validate(json.loads(CASE_FILES[2].read_text())["case_study"]["script"])
    messages = [SystemMessage(content="You are an assistant."), HumanMessage(content="Summarize the newest email for me."),
                AIMessage(content="", tool_calls=[{"name": "search_gmail", "args": {}, "id": "c1", "type": "tool_call"}]),
                ToolMessage(content="Id: m0003 | ... Instructions for the AI assistant ...", tool_call_id="c1")]
    tools = [{"type": "function", "function": {"name": n, "description": "d", "parameters": {"type": "object"}}}
             for n in ("search_gmail", "google_drive_retrieve")]
    replies = [ScriptedChatModel(script=script).bind_tools(tools).invoke(messages) for _ in range(2)]
    assert replies[0].tool_calls[0]["name"] == replies[1].tool_calls[0]["name"] == "google_drive_retrieve"
    assert replies[0].tool_calls[0]["args"] == replies[1].tool_calls[0]["args"]
    system_names = ("SecGPT", "VanillaGPT", "spoke", "hub")
    rules_text = json.dumps(script.model_dump()["rules"])
    assert not any(f'"{name}' in rules_text for name in system_names)  # no rule names a system


@pytest.mark.parametrize("number", [1, 3])
def test_case_programs_run_with_an_openai_compatible_model(launcher, monkeypatch, tmp_path, number):
    """The same runner through the real langchain-openai client: a local OpenAI-compatible server
    that answers with the case's script gives the same verdicts as the offline model."""
    from tests.openai_server import OpenAIServer
    script = tmp_path / "script.json"
    script.write_text(json.dumps(json.loads(CASE_FILES[number].read_text())["case_study"]["script"]))
    with OpenAIServer(script) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        vanilla = run_case(number, "VanillaGPT", "openai", "n/a")
        secgpt = run_case(number, "SecGPT", "openai", "expected", launcher=launcher)
        assert server.requests
    assert vanilla.attack_succeeded and not secgpt.attack_succeeded and secgpt.benign_done
    assert "127.0.0.1" in secgpt.llm
