"""Runs in: spoke.

The ``sandbox`` app: runs a string of Python code inside its spoke.

It is an ordinary app (same launcher, same policy, same broker), used by
``python -m hub.sandbox_cli`` and by the escape battery, so that an
escape attempt faces exactly what a real app's code would face. The code gets
one name from outside, ``hub``: the app's ``SpokeOperator``.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Mapping

MAX_OUTPUT = 256 * 1024


def run_code(request: Mapping[str, object], hub: object) -> dict[str, str | None]:
    code = request.get("code")
    if not isinstance(code, str):
        raise TypeError("run_code needs a 'code' string")
    out = io.StringIO()
    error_type: str | None = None
    error: str | None = None
    with contextlib.redirect_stdout(out):
        try:
            exec(compile(code, "<sandbox>", "exec"), {"__name__": "__sandbox__", "hub": hub})  # noqa: S102
        except BaseException as exc:  # noqa: BLE001 - SystemExit and MemoryError are results too
            error_type, error = type(exc).__name__, str(exc)
    return {"stdout": out.getvalue()[-MAX_OUTPUT:], "error_type": error_type, "error": error}


FUNCTIONALITIES = {"run_code": run_code}
