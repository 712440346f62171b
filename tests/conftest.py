"""Shared fixtures, and nothing else (helpers live in the tests' helper modules, which tests
import; a test never imports conftest or another test). Tests point the data directory (and
HOME) at temporary directories; one zygote serves the whole session; every process is
cleaned up."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from helpers.sandbox.launcher import SpokeLauncher
from hub.audit import AuditLog
from hub.broker import SpokeBroker

settings.register_profile("secgpt", deadline=None, max_examples=60,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.load_profile("secgpt")


@pytest.fixture
def data_dir(monkeypatch) -> Path:
    """A data directory the unprivileged spoke user can traverse (pytest's own tmp
    dirs are 0700 root, which would test the mount view instead of the code)."""
    base = Path(tempfile.mkdtemp(prefix="secgpt-test-"))
    base.chmod(0o755)
    data = base / "data"
    data.mkdir()
    home = base / "home"
    home.mkdir()
    monkeypatch.setenv("SECGPT_DATA_DIR", str(data))
    monkeypatch.setenv("HOME", str(home))
    yield data
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def launcher() -> SpokeLauncher:
    with SpokeLauncher() as started:
        yield started


@pytest.fixture
def hub(launcher, data_dir) -> SpokeBroker:
    operator = SpokeBroker(launcher, AuditLog(data_dir / "audit" / "audit.jsonl"))
    yield operator
    operator.close()
    operator.audit.close()
