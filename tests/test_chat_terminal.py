"""The chat in a real terminal (a pty): Ctrl-C cancels a slow answer and the chat goes on;
Ctrl-D ends it cleanly."""

from __future__ import annotations

import fcntl
import os
import select
import subprocess
import sys
import termios
import time

from helpers.configs import paths
from tests.flow_helpers import SCRIPT
from tests.openai_server import OpenAIServer


class Terminal:
    def __init__(self, args: list[str], env: dict) -> None:
        self.master, slave = os.openpty()

        def take_terminal():
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)
        self.process = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, env=env,
                                        cwd=paths.REPO_ROOT, start_new_session=True, preexec_fn=take_terminal)
        os.close(slave)
        self.output = ""

    def expect(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{text!r} not seen; got:\n{self.output}")
            if select.select([self.master], [], [], remaining)[0]:
                try:
                    self.output += os.read(self.master, 4096).decode(errors="replace")
                except OSError:
                    raise AssertionError(f"terminal closed before {text!r}; got:\n{self.output}") from None

    def send(self, data: str) -> None:
        os.write(self.master, data.encode())

    def close(self) -> int:
        try:
            return self.process.wait(timeout=30)
        finally:
            os.close(self.master)


def test_ctrl_c_cancels_an_answer_and_ctrl_d_exits(data_dir):
    with OpenAIServer(SCRIPT) as server:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "SECGPT_"))}
        env.update(SECGPT_DATA_DIR=str(data_dir), OPENAI_BASE_URL=server.base_url, OPENAI_API_KEY="sk-t",
                   TERM="dumb")
        term = Terminal([sys.executable, "secgpt_main.py", "--consent", "expected"], env)
        try:
            term.expect("You: ")
            server.delay.set()
            term.send("What is the metro_hail fare from Main Street to Elm Avenue?\n")
            assert server.waiting.wait(60)
            term.send("\x03")  # Ctrl-C
            term.expect("(answer cancelled)")
            server.delay.clear()
            term.expect("You: ")
            term.send("What is the metro_hail fare from Main Street to Elm Avenue?\n")
            term.expect("$51.80")
            term.send("\x04")  # Ctrl-D
            assert term.close() == 0
        finally:
            server.delay.clear()
            if term.process.poll() is None:
                term.process.kill()
                term.process.wait()
