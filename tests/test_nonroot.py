"""A hub that is not root: the spoke builds its view in a user namespace, or, where the system
forbids those, falls back loudly to Landlock, seccomp and rlimits.

These tests mean something only as an ordinary user; .ci/run runs them as one (with the escape
battery and the other sandbox tests). As root they are skipped.
"""

from __future__ import annotations

import subprocess

import pytest

from helpers.sandbox import mounts
from helpers.sandbox.app_spec import AppSpec
from helpers.sandbox.launcher import USERNS_WARNING, SpokeLauncher
from helpers.sandbox.sandbox import SANDBOX_APP
from hub.audit import AuditLog
from hub.broker import SpokeBroker
from tests.sandbox_helpers import is_root, sandbox_code

pytestmark = pytest.mark.skipif(is_root(), reason="as root, spokes get per-app uids instead")


def _report(launcher: SpokeLauncher):
    hub = SpokeBroker(launcher, AuditLog(None))
    try:
        spoke = hub.start(AppSpec(name="sandbox", module=SANDBOX_APP.module))
        return spoke.process.sandbox, hub.call(spoke, "run_code", {"code": CODE}).response["stdout"]
    finally:
        hub.close()


CODE = ("import os\nfor p in (os.path.expanduser('~'), '/proc/1'):\n    try:\n        os.stat(p)\n"
        "        print(p, 'visible')\n    except OSError as e:\n        print(p, type(e).__name__)")


def test_user_namespace_gives_the_root_layers(data_dir, capsys):
    if not mounts.user_namespaces_work():
        pytest.skip("this system forbids unprivileged user namespaces")
    with SpokeLauncher() as launcher:
        assert launcher.user_namespaces
        report, out = _report(launcher)
    assert report.user_namespace and report.mount_namespace and report.network_namespace
    assert report.seccomp and report.landlock_abi >= 0
    assert "/proc/1 FileNotFoundError" in out  # /proc masked: no host process visible
    assert USERNS_WARNING not in capsys.readouterr().err


def test_fallback_warns_and_keeps_the_other_layers(data_dir, capsys):
    with SpokeLauncher(user_namespaces=False) as launcher:
        assert not launcher.user_namespaces
        report, out = _report(launcher)
    assert USERNS_WARNING in capsys.readouterr().err
    assert not report.user_namespace and not report.mount_namespace and not report.network_namespace
    assert report.seccomp
    # What the fallback leaves, as the README states: /proc/PID can be stat'ed.
    assert "/proc/1 visible" in out


def test_spoke_cannot_signal_the_users_other_processes(hub):
    """Spokes share the user's uid: the kernel would allow the kill; seccomp must refuse it."""
    sleeper = subprocess.Popen(["sleep", "600"])
    try:
        outcome = sandbox_code(hub, f"import os, signal; os.kill({sleeper.pid}, signal.SIGKILL)")
        assert outcome.response["error_type"] == "PermissionError"
        assert sleeper.poll() is None
        sleeper.kill()  # control: the same user, unconfined, may
        assert sleeper.wait(timeout=10) == -9
    finally:
        if sleeper.poll() is None:
            sleeper.kill()
            sleeper.wait()
