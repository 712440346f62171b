"""Runs in: hub (the spec; the code it names runs in a spoke).

The ``sandbox`` app: an ordinary app whose one functionality runs a string of Python code in
its spoke (``helpers.sandbox.playground``), so an escape attempt faces exactly what a real app's
code faces. Used by the sandbox command line (``python -m hub.sandbox_cli CODE``), the escape
battery and the tests.

The original's ``python -m helpers.sandbox.sandbox`` moved to the hub, which serves the spoke:
helpers/ never imports hub/ (ARCHITECTURE.md, "Trust domains"). Run this module and it says so.
"""

from __future__ import annotations

import sys

from helpers.sandbox.app_spec import AppSpec

SANDBOX_APP = AppSpec(name="sandbox", module="helpers.sandbox.playground")
MOVED = "sandbox: this command moved; run: python -m hub.sandbox_cli CODE (python -m hub.sandbox_cli --help)"


if __name__ == "__main__":
    print(MOVED, file=sys.stderr)
    sys.exit(2)
