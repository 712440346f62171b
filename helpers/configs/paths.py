"""Runs in: hub, zygote, spoke, vanillagpt.

Where things live. Every path derives from the repository root, never from a
hand-edited constant; ``SECGPT_DATA_DIR`` moves the whole data directory (the
tests point it at a temporary directory).

This module must stay import-cheap: the zygote and every spoke import it.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

# Directories of trusted project code a spoke may read (never data/).
CODE_DIRS = ("helpers", "spoke")


def data_dir() -> Path:
    override = os.environ.get("SECGPT_DATA_DIR")
    return Path(override).resolve() if override else REPO_ROOT / "data"


def apps_data_root() -> Path:
    """Parent of every app's private directory."""
    return data_dir() / "apps"


def app_data_dir(app: str) -> Path:
    return apps_data_root() / app


def perm_file() -> Path:
    return data_dir() / "perm.json"


def env_file() -> Path:
    return data_dir() / "env_variables.json"


def audit_dir() -> Path:
    return data_dir() / "audit"
