"""``python -m hub.sandbox_cli CODE``: stdout printed, exit status and reason."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from helpers.configs import paths


def _run(*args: str, data_dir) -> subprocess.CompletedProcess:
    env = dict(os.environ, SECGPT_DATA_DIR=str(data_dir), PYTHONPATH=str(paths.REPO_ROOT))
    return subprocess.run([sys.executable, "-m", "hub.sandbox_cli", *args], capture_output=True,
                          text=True, timeout=120, env=env, cwd=paths.REPO_ROOT)


@pytest.mark.parametrize("code,status,stdout,reason", [
    ("print('hello from the spoke')", 0, "hello from the spoke\n", ""),
    ("print('before'); import os; os.fork()", 1, "before\n", "PermissionError"),
    ("open('/etc/hostname').read(); import socket; socket.socket()", 1, "", "PermissionError"),
    ("while True: pass", 2, "", "CPU time limit exceeded"),
    ("import time; time.sleep(30)", 2, "", "did not answer within 1s"),
])
def test_cli(data_dir, code, status, stdout, reason):
    result = _run("--cpu-seconds", "1", "--timeout", "1" if "sleep" in code else "20", code, data_dir=data_dir)
    assert result.returncode == status, result.stderr
    assert result.stdout == stdout
    lines = [line for line in result.stderr.splitlines() if line.startswith("sandbox:")]
    if reason:
        assert len(lines) == 1 and reason in lines[0]
    else:
        assert not lines


def test_the_original_command_says_where_it_moved(data_dir):
    env = dict(os.environ, SECGPT_DATA_DIR=str(data_dir), PYTHONPATH=str(paths.REPO_ROOT))
    result = subprocess.run([sys.executable, "-m", "helpers.sandbox.sandbox", "print(1)"], capture_output=True,
                            text=True, timeout=60, env=env, cwd=paths.REPO_ROOT)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip() == "sandbox: this command moved; run: python -m hub.sandbox_cli CODE " \
                                    "(python -m hub.sandbox_cli --help)"
