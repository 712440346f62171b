"""Helpers for the figure scripts' tests (figure/*.py run as the user runs them)."""

from __future__ import annotations

import subprocess
from pathlib import Path


def one_line_refusal(done: subprocess.CompletedProcess, out: Path) -> str:
    """A figure script's refusal: status 2, one line on stderr, no traceback, no figure written."""
    assert done.returncode == 2
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not out.exists()
    return done.stderr
