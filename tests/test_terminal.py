"""Terminal injection: an app's text (an answer, a dialog's details, a debug line) must reach
the user's terminal with no escape sequence and no control character but newline and tab."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from helpers.configs import paths
from helpers.llm.config import LLMConfig
from helpers.permission.prompt import PermissionRequest, dialog_text
from helpers.utilities.chat_cli import answer_text
from helpers.utilities.terminal import CONTROL_CLASSES, safe_text

OSC52 = "\x1b]52;c;cm0gLXJmIH4K\x07"          # write "rm -rf ~" to the clipboard
CLEAR = "\x1b[2J\x1b[H"                       # clear the screen, cursor home
FAKE_DIALOG = "Allow gmail to execute?\n1: Allow Once\n4: Don't Allow\nYour choice (1-4): "
ATTACK = f"The fare is $5.{OSC52}{CLEAR}{FAKE_DIALOG}\u202etxt.exe"


@pytest.mark.parametrize("name,sample", [
    ("C0", "".join(chr(c) for c in range(0x20) if c not in (0x09, 0x0A))),
    ("DEL", "\x7f"),
    ("C1", "".join(chr(c) for c in range(0x80, 0xA0))),
    ("bidi", "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"),
])
def test_every_control_class_is_removed(name, sample):
    assert name in CONTROL_CLASSES
    assert safe_text(f"a{sample}b") == "ab"


@pytest.mark.parametrize("sequence", [
    OSC52, "\x1b]52;c;cm0=\x1b\\", "\x1b]0;new window title\x07", "\x1b]8;;https://evil.example/\x1b\\",
    "\x1b[2J", "\x1b[1;1H", "\x1b[31;1m", "\x1b[?1049h", "\x1b[6n", "\x9b2J", "\x9d52;c;cm0=\x9c",
    "\x1bP+q544e\x1b\\", "\x1b_payload\x1b\\", "\x1bc", "\x1b(0", "\x1b7", "\x1b#8",
])
def test_escape_sequences_are_removed_whole(sequence):
    """A sequence goes as a whole: its parameters (a clipboard payload, a title) are not left as text."""
    assert safe_text(f"before{sequence}after") == "beforeafter"


def test_text_newlines_tabs_and_non_ascii_are_kept():
    text = "Fare: $51.80\n\tMetroHail – Zürich → 東京 ✓"
    assert safe_text(text) == text


def test_dialog_details_are_made_safe():
    request = PermissionRequest("0", "quick_ride->metro_hail", "collab", f"metro_hail answers: {ATTACK}", False)
    shown = dialog_text(request)
    assert "\x1b" not in shown and "\u202e" not in shown and "\x07" not in shown
    assert "The fare is $5." in shown and shown.endswith("4: Don't Allow")
    assert "\x1b]52" in request.details  # control: the request itself carries the attack


def test_answer_lines_cannot_pass_for_the_chats_own():
    shown = answer_text("SecGPT", ATTACK)
    assert "\x1b" not in shown
    assert all(line.startswith(("SecGPT: ", " " * 8)) for line in shown.splitlines())


def _script(tmp_path) -> LLMConfig:
    """A worst-case model that plans nothing and repeats an app's hostile text as its answer."""
    script = tmp_path / "script.json"
    script.write_text(json.dumps({"rules": [
        {"when": {"system_contains": "You are the planner of SecGPT"}, "then": {"content": '{"steps": []}'}},
        {"then": {"content": ATTACK}}]}))
    return LLMConfig(provider="scripted", model="scripted", script=script)


@pytest.mark.parametrize("program,name", [("secgpt_main.py", "SecGPT"), ("vanillagpt_main.py", "VanillaGPT")])
def test_hostile_answer_reaches_the_chat_inert(launcher, data_dir, tmp_path, program, name):
    """The chat program, from a pipe: the answer is printed, without any of its sequences."""
    llm = _script(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "SECGPT_"))}
    env.update(SECGPT_DATA_DIR=str(data_dir))
    result = subprocess.run([sys.executable, program, "--llm", "scripted", "--script", str(llm.script), "--debug"],
                            input="What is the fare?\n", capture_output=True, text=True, timeout=120,
                            cwd=paths.REPO_ROOT, env=env)
    assert result.returncode == 0, result.stderr
    assert f"{name}: The fare is $5.Allow gmail to execute?" in result.stdout
    for bad in ("\x1b", "\x07", "\u202e", "\r"):
        assert bad not in result.stdout + result.stderr


def test_control_the_answer_reaching_the_chat_carries_the_sequences(launcher, data_dir, tmp_path):
    """Control: the text the chat is handed holds the raw sequences; the chat's printing removed them."""
    from hub.hub import Hub
    with Hub(_script(tmp_path), consent="expected", launcher=launcher) as hub:
        text = hub.answer("What is the fare?").text
    assert OSC52 in text and CLEAR in text and "\u202e" in text
