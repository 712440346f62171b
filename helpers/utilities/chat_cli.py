"""Runs in: hub, vanillagpt (the user's terminal).

The terminal chat shared by secgpt_main.py and vanillagpt_main.py.

"You: " prompt, answers prefixed with the system's name, slash commands, a
spinner while the LLM works, permission dialogs, Ctrl-C cancels an answer,
Ctrl-D or /exit ends. With stdin not a terminal: one query per line, consent
defaults to ``expected`` and every permission decision is printed.

Everything shown that an app, the LLM or a configuration file may have written
(answers, dialogs, debug lines, errors, app descriptions) goes through
``safe_text`` first: no escape sequence reaches the user's terminal. A budget
overrun is always shown, in one line.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import threading
import traceback
from collections.abc import Callable
from pathlib import Path

from helpers.configs.isolation import ISOLATION_HELP
from helpers.llm.config import LLM_CHOICES, LLM_HELP, load_llm_config
from helpers.permission.prompt import CONSENT_MODES
from helpers.permission.store import CATEGORIES
from helpers.utilities.errors import ConfigError, SecGPTError
from helpers.utilities.session import Session
from helpers.utilities.terminal import safe_text

HELP = """Commands:
  /help                      this help
  /apps                      installed apps and their functionalities
  /perms                     your stored permissions
  /perms revoke KEY [CAT]    revoke a permission (KEY: app, A->B, A:f or A->B:f; CAT: exec, data or collab)
  /debug                     show or hide intermediate steps (plan, spokes, messages, permissions)
  /exit                      quit (Ctrl-D works too; Ctrl-C cancels an answer)"""


def parser(prog: str, description: str, isolation: bool = False) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=description)
    if isolation:
        p.add_argument("--isolation", help=f"isolation mode: {ISOLATION_HELP}")
    p.add_argument("--user", default="0", help="user id (permissions and memory are per user)")
    p.add_argument("--debug", action="store_true", help="show intermediate steps")
    p.add_argument("--functionalities", type=Path, help="installed apps file (default data/functionalities.json)")
    p.add_argument("--consent", choices=CONSENT_MODES, help="how permission questions are answered "
                   "(default: ask on a terminal, expected otherwise)")
    p.add_argument("--llm", choices=LLM_CHOICES, help=f"{LLM_HELP}; default: the configured one")
    p.add_argument("--model", help="model name, or provider:model (e.g. anthropic:claude-sonnet-4-5; or SECGPT_MODEL)")
    p.add_argument("--base-url", help="OpenAI-compatible server URL (or OPENAI_BASE_URL)")
    p.add_argument("--script", help="script for --llm scripted")
    p.add_argument("--traceback", action="store_true", help="show tracebacks of errors")
    return p


class Spinner:
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if not self.enabled or self._thread:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread:
            self._stop.set()
            self._thread.join()
            self._thread = None
            sys.stderr.write("\r \r")
            sys.stderr.flush()

    def _spin(self) -> None:
        for char in itertools.cycle("|/-\\"):
            if self._stop.wait(0.1):
                return
            sys.stderr.write(f"\r{char}")
            sys.stderr.flush()


class Chat:
    def __init__(self, name: str, args: argparse.Namespace, interactive: bool) -> None:
        self.name, self.args, self.interactive = name, args, interactive
        self.debug = args.debug
        self.spinner = Spinner(interactive and sys.stderr.isatty())
        self.consent = args.consent or ("ask" if interactive else "expected")

    # Permission dialogs and debug lines must not fight with the spinner.
    def read(self, prompt: str) -> str:
        self.spinner.stop()
        if not self.interactive:
            raise EOFError("permission questions need a terminal; use --consent")
        answer = input(safe_text(prompt))
        self.spinner.start()
        return answer

    def write(self, text: str) -> None:
        self.spinner.stop()
        print(safe_text(text), flush=True)

    def emit(self, kind: str, text: str) -> None:
        if self.debug or kind == "budget" or (kind == "permission" and not self.interactive):
            self.spinner.stop()
            print(f"  [{kind}] {safe_text(text)}", flush=True)
            self.spinner.start()


def answer_text(name: str, text: str) -> str:
    """An answer as printed: the system's name, then the text made safe, its later lines
    indented so that nothing in it can pass for the chat's own lines (a prompt, a dialog)."""
    return f"{name}: " + safe_text(text).replace("\n", "\n" + " " * (len(name) + 2))


def run_chat(name: str, argv: list[str] | None, build: Callable[..., Session], description: str,
             isolation: bool = False) -> int:
    """``build(args, llm, chat)`` makes the session; ``isolation``: the program has --isolation."""
    args = parser(f"{name.lower()}_main.py", description, isolation=isolation).parse_args(argv)
    interactive = sys.stdin.isatty()
    chat = Chat(name, args, interactive)
    try:
        llm = load_llm_config(args.llm, args.model, args.base_url, args.script)
        session = build(args, llm, chat)
        session.start()
    except ConfigError as exc:
        print(safe_text(exc), file=sys.stderr)
        return 2
    except SecGPTError as exc:
        print(f"{name}: {safe_text(exc)}", file=sys.stderr)
        return 2
    try:
        if interactive:
            mode = f", isolation: {session.info.isolation}" if session.info.isolation else ""
            print(f"{name} ({llm.describe()}, consent: {chat.consent}{mode}). /help for commands, /exit to quit.")
        return _loop(chat, session, args)
    finally:
        session.close()


def _loop(chat: Chat, session: Session, args) -> int:
    while True:
        try:
            line = input("You: ") if chat.interactive else sys.stdin.readline()
        except EOFError:
            print()
            return 0
        except KeyboardInterrupt:
            print()
            continue
        if not chat.interactive:
            if not line:
                return 0
            line = line.rstrip("\n")
            print(f"You: {line}")
        query = line.strip()
        if not query:
            continue
        if query.startswith("/"):
            if _command(chat, session, query) == "exit":
                return 0
            continue
        chat.spinner.start()
        try:
            answer = session.answer(query)
            chat.spinner.stop()
            print(answer_text(chat.name, answer.text), flush=True)
        except KeyboardInterrupt:
            chat.spinner.stop()
            session.cancel()
            print("\n(answer cancelled)")
        except SecGPTError as exc:
            chat.spinner.stop()
            print(f"{chat.name}: error: {safe_text(exc)}")
            if args.traceback:
                traceback.print_exc()
        except EOFError as exc:  # a permission question without a terminal
            chat.spinner.stop()
            print(f"{chat.name}: error: {safe_text(exc)}")
        except Exception as exc:  # noqa: BLE001 - a bug must cost one answer, not the session
            chat.spinner.stop()
            print(f"{chat.name}: internal error: {type(exc).__name__}: {safe_text(exc)} (--traceback shows where)")
            if args.traceback:
                traceback.print_exc()


def _command(chat: Chat, session: Session, line: str) -> str | None:
    words = line.split()
    cmd = words[0]
    if cmd == "/exit":
        return "exit"
    if cmd == "/help":
        print(HELP)
    elif cmd == "/debug":
        chat.debug = not chat.debug
        print(f"debug {'on' if chat.debug else 'off'}")
    elif cmd == "/apps":
        for app in session.importer.apps.values():
            print(safe_text(f"{app.name}: {app.manifest.description}"))
            for f in app.functionalities.values():
                print(f"  - {safe_text(f.name)}")
    elif cmd == "/perms":
        if not session.info.asks_permissions:
            print(f"{session.info.system} has no permission system: every app can use everything.")
        elif len(words) >= 3 and words[1] == "revoke":
            named = words[3] if len(words) > 3 else None
            category = next((c for c in CATEGORIES if c == named), None)
            if named is not None and category is None:
                print("category must be exec, data or collab")
            else:
                print("revoked" if session.revoke(words[2], category) else "no such permission")
        else:
            grants = session.grants()
            if not grants:
                print("no stored permissions")
            for key, entry in sorted(grants.items()):
                print(safe_text(f"{key}: " + ", ".join(f"{c}={s}" for c, s in sorted(entry.items()))))
    else:
        print(f"unknown command {safe_text(cmd)}; /help lists the commands")
    return None


def main_for(name: str, build: Callable[..., Session], description: str, user_id: str, debug: bool,
             argv: list[str] | None, isolation: bool = False) -> int:
    """The original's ``main(user_id, debug=...)`` for either chat program."""
    extra = list(argv if argv is not None else sys.argv[1:])
    if "--user" not in extra:
        extra += ["--user", str(user_id)]
    if debug and "--debug" not in extra:
        extra.append("--debug")
    return run_chat(name, extra, build, description, isolation)
