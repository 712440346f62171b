"""Runs in: hub, vanillagpt (read once, at start; spokes are told what they need in their messages).

Which isolation mode SecGPT runs in: ``faithful`` (the paper's architecture) or ``strict``.

``faithful`` is IsolateGPT as published: LLMs that decide control flow (the planner, the
routing spoke, an app's own agent) read text apps wrote. ``strict`` keeps the same
processes, sandbox and permissions and adds one rule: what an app wrote never decides what
runs next (the planner sees the user's request and app signatures only; the hub carries
out the plan as code and checks every functionality call against it; each app's result is
phrased in its own spoke). The flag beats the environment (``SECGPT_ISOLATION``), which
beats the default.
"""

from __future__ import annotations

import os
from typing import Literal, cast

from helpers.utilities.errors import ConfigError

IsolationMode = Literal["faithful", "strict"]
ISOLATION_MODES: tuple[IsolationMode, ...] = ("faithful", "strict")
DEFAULT_ISOLATION: IsolationMode = "faithful"
ENV_VAR = "SECGPT_ISOLATION"
ISOLATION_HELP = ("faithful (default: the paper's architecture) or strict (no app text decides what runs "
                  f"next); also {ENV_VAR}")


def isolation_mode(flag: str | None = None, environ: dict[str, str] | None = None) -> IsolationMode:
    """The mode to run in: ``flag`` if given, else ``SECGPT_ISOLATION``, else faithful."""
    value = flag if flag is not None else (os.environ if environ is None else environ).get(ENV_VAR, "")
    value = value.strip().lower() or DEFAULT_ISOLATION
    if value not in ISOLATION_MODES:
        source = "--isolation" if flag is not None else ENV_VAR
        raise ConfigError(f"{source}={value!r} is not an isolation mode: use faithful or strict "
                          f"(or unset {ENV_VAR})")
    return cast(IsolationMode, value)
