"""Helpers for the figure scripts' tests (figure/*.py run as the user runs them)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def one_line_refusal(done: subprocess.CompletedProcess, out: Path) -> str:
    """A figure script's refusal: status 2, one line on stderr, no traceback, no figure written."""
    assert done.returncode == 2
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not out.exists()
    return done.stderr


def draw_without_matplotlib(tmp_path: Path, script: Path, results: Path, out: Path) -> subprocess.CompletedProcess:
    """Run a figure script where importing matplotlib fails, as on a core-only install."""
    fake = tmp_path / "site" / "matplotlib"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('no matplotlib in this test')\n")
    return subprocess.run([sys.executable, str(script), "--results", str(results), "--output", str(out)],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120,
                          env={"PYTHONPATH": str(tmp_path / "site"), "PATH": "/usr/bin:/bin"})
