"""Runs in: hub, vanillagpt.

Temporarily set environment variables (and put them back), e.g. a run's data directory.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def temporary_environ(**values: str) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextmanager
def scratch_data_dir(prefix: str = "secgpt-") -> Iterator[Path]:
    """A new, empty data directory (and HOME) for one run, removed afterwards: its own memory,
    permissions, audit log and app directories. Yields the data directory."""
    base = Path(tempfile.mkdtemp(prefix=prefix))
    base.chmod(0o755)  # spokes (uid nobody) traverse it to their own bind-mounted directory
    (base / "data").mkdir()
    (base / "home").mkdir()
    try:
        with temporary_environ(SECGPT_DATA_DIR=str(base / "data"), HOME=str(base / "home")):
            yield base / "data"
    finally:
        shutil.rmtree(base, ignore_errors=True)
