"""Runs in: hub.

Run a piece of Python code in a freshly launched spoke, to try the sandbox by hand.

    python -m hub.sandbox_cli "import os; os.fork()"

Same launcher, same policy and same broker as an app spoke: the code runs as
the body of the ``sandbox`` app. Prints the code's stdout; exits 0 if the code
finished, 1 with a one-line reason on stderr if it raised, 2 if the spoke was
stopped (a limit, a crash, a timeout) or could not start.
"""

from __future__ import annotations

import argparse
import sys

from helpers.configs import paths
from helpers.isc.messages import AppResponse
from helpers.sandbox.app_spec import AppSpec
from helpers.sandbox.launcher import SpokeLauncher
from helpers.sandbox.policy import ResourceLimits
from helpers.sandbox.sandbox import SANDBOX_APP
from helpers.utilities.errors import SecGPTError
from hub.audit import AuditLog
from hub.broker import SpokeBroker


def run(code: str, limits: ResourceLimits | None = None, timeout: float | None = None,
        allowed_domains: frozenset[str] = frozenset()) -> tuple[int, str, str]:
    """(exit status, stdout, one-line reason) of running ``code`` in a new spoke."""
    app = AppSpec(name=SANDBOX_APP.name, module=SANDBOX_APP.module,
                  limits=limits or ResourceLimits(), allowed_domains=allowed_domains)
    with SpokeLauncher() as launcher:
        hub = SpokeBroker(launcher, AuditLog.in_dir(paths.audit_dir()))
        try:
            outcome = hub.call(hub.start(app), "run_code", {"code": code}, timeout=timeout)
        finally:
            hub.close()
    if isinstance(outcome, AppResponse):
        result = outcome.response
        if result.get("error_type"):
            return 1, result.get("stdout", ""), f"{result['error_type']}: {result.get('error')}"
        return 0, result.get("stdout", ""), ""
    return 2, "", getattr(outcome, "message", outcome.type)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hub.sandbox_cli", description=__doc__.split("\n\n")[1])
    parser.add_argument("code", help="Python code to run inside a sandboxed spoke")
    parser.add_argument("--timeout", type=float, default=None, help="seconds before the hub stops the spoke")
    parser.add_argument("--memory-mb", type=int, default=None, help="address-space limit (MiB)")
    parser.add_argument("--cpu-seconds", type=int, default=None, help="CPU time limit")
    parser.add_argument("--allow-domain", action="append", default=[], help="allow egress to this domain")
    args = parser.parse_args(argv)
    overrides = {k: v for k, v in (("address_space_mb", args.memory_mb), ("cpu_seconds", args.cpu_seconds))
                 if v is not None}
    try:
        status, stdout, reason = run(args.code, ResourceLimits(**overrides), args.timeout,
                                     frozenset(args.allow_domain))
    except SecGPTError as exc:
        print(f"sandbox: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(stdout)
    if reason:
        print(f"sandbox: {reason}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
