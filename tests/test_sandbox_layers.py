"""Each sandbox layer, checked from inside a real spoke: the limits in the policy
are the limits in force, the filesystem view holds exactly what the policy
says, and no secret of the hub is anywhere in a spoke's memory. The sandbox
report is measured: each measurement tells a layer applied from one not applied,
and a confinement run with one layer skipped reports it, so the hub refuses it."""

from __future__ import annotations

import os
import re

import pytest

from helpers.isc import spoke_start
from helpers.isc.messages import SandboxReport
from helpers.sandbox import app_dirs, confine, landlock, mounts, seccomp
from helpers.sandbox.app_spec import AppSpec
from helpers.sandbox.policy import ResourceLimits, rlimits_for
from helpers.sandbox.sandbox import SANDBOX_APP
from tests.sandbox_helpers import in_child, is_root, memory_contains, sandbox_code

CANARY = "sk-canary-hub-only-7c1e9b2a5d"


def test_spoke_reports_every_layer(hub):
    spoke = hub.start(AppSpec(name="sandbox", module=SANDBOX_APP.module))
    report = spoke.process.sandbox
    assert report.seccomp
    assert report.rlimits == rlimits_for(ResourceLimits())
    assert report.landlock_abi == landlock.abi_version()
    if is_root():
        assert report.uid != 0 and report.gid != 0 and report.mount_namespace
    if is_root() or hub.launcher.user_namespaces:
        assert report.mount_namespace and report.network_namespace
        assert report.user_namespace == (not is_root())


# --- the report is measured ----------------------------------------------------------------------

def _filtered() -> list[int]:
    before = confine.seccomp_mode()
    seccomp.load()
    return [before, confine.seccomp_mode()]


def test_seccomp_is_measured():
    assert in_child(_filtered) == [0, confine.SECCOMP_MODE_FILTER]
    assert in_child(confine.seccomp_mode) == 0  # the control: no filter loaded, none reported


def _new_namespaces(apply: bool) -> list[str]:
    namespaces = confine.Namespaces()
    if apply:
        if not is_root():
            mounts.enter_user_namespace()
        mounts.unshare(mounts.CLONE_NEWNS | mounts.CLONE_NEWNET)
        # Cover /proc as the spoke's view does: the measurement must outlast it.
        mounts._mount(None, "/", None, mounts.MS_REC | mounts.MS_PRIVATE)
        mounts._mount("tmpfs", "/proc", "tmpfs", mounts.MS_NOSUID | mounts.MS_NODEV, "size=4k")
        assert not os.path.exists("/proc/self")
    try:
        return sorted(namespaces.changed())
    finally:
        namespaces.close()


def test_namespaces_are_measured():
    if not (is_root() or mounts.user_namespaces_work()):
        pytest.skip("this system forbids unprivileged user namespaces")
    assert in_child(lambda: _new_namespaces(True)) == ["mnt", "net"] + ([] if is_root() else ["user"])
    assert in_child(lambda: _new_namespaces(False)) == []  # the control


def test_landlock_abi_reported_is_enforced():
    if landlock.abi_version() == 0:
        pytest.skip("this kernel has no Landlock")

    def read_after(restrict: bool) -> list:
        confine._prctl(confine.PR_SET_NO_NEW_PRIVS, 1)  # what an unprivileged restrict needs
        abi = landlock.restrict([], []) if restrict else 0
        try:
            open("/etc/hostname").close()
            return [abi, "read"]
        except OSError as exc:
            return [abi, type(exc).__name__]
    assert in_child(lambda: read_after(True)) == [landlock.abi_version(), "PermissionError"]
    assert in_child(lambda: read_after(False)) == [0, "read"]  # the control


def _skip_network_namespace() -> None:
    unshare = mounts.unshare
    mounts.unshare = lambda flags: unshare(flags & ~mounts.CLONE_NEWNET)


# Each layer skipped as a bug in confine's steps would skip it: patched in the child only.
SKIPS = {
    "seccomp": lambda: setattr(seccomp, "load", lambda *args: None),
    "mount_namespace": lambda: setattr(mounts, "build_view", lambda *args: None),
    "network_namespace": _skip_network_namespace,
}


def _confined_report(launcher, skip: str | None, **changes) -> tuple:
    """Run ``confine`` as a spoke would, in a child of the test, with the layer ``skip`` left
    out; its report, and why the hub would refuse it (None: accepted). Limits are left out
    (this process is larger than a spoke), and are not what is tested."""
    policy = AppSpec(name="sandbox", module=SANDBOX_APP.module).policy()
    spec = launcher.confinement(policy, SANDBOX_APP.module).model_copy(update={"rlimits": {}, **changes})
    app_dirs.prepare_app_dir(policy.data_dir, None if spec.uid is None else (spec.uid, spec.gid))
    parent = os.getpid()

    def run():
        if skip is not None:
            SKIPS[skip]()
        return confine.confine(spec, parent).model_dump(mode="json")
    report = SandboxReport.model_validate(in_child(run))
    return report, spoke_start.report_mismatch(spec, report, launcher.landlock_abi)


@pytest.mark.parametrize("layer", SKIPS)
def test_a_skipped_layer_is_reported_and_refused(launcher, data_dir, layer):
    changes = {}
    if layer == "mount_namespace" and is_root():
        # Without its view, a spoke dropped to its own uid cannot reach the interpreter under
        # /root and fails outright; the view built in a user namespace (a hub that is not root)
        # keeps the identity, so the missing namespace is what shows.
        changes = {"uid": None, "gid": None, "user_namespace": True}
    if layer != "seccomp" and not (is_root() or launcher.user_namespaces):
        pytest.skip("no namespaces without root or user namespaces (the launcher warned)")
    report, refusal = _confined_report(launcher, None, **changes)  # the control: every layer, accepted
    assert refusal is None and getattr(report, layer) is True
    report, refusal = _confined_report(launcher, layer, **changes)
    assert getattr(report, layer) is False
    assert refusal is not None and refusal.startswith(f"{layer} is False")


def test_the_measurement_leaves_no_handle_to_app_code(hub):
    """The handle the report is measured through (on /proc/self/ns) is closed before app code
    runs: no descriptor of the spoke resolves a namespace name."""
    code = ("import os\nfound = []\nfor fd in range(3, 1024):\n    try:\n        os.stat('mnt', dir_fd=fd)\n"
            "        found.append(fd)\n    except OSError:\n        pass\nprint(found)")
    assert sandbox_code(hub, code).response["stdout"] == "[]\n"


@pytest.mark.parametrize("name,value", sorted(rlimits_for(ResourceLimits()).items()))
def test_rlimit_in_force_and_not_raisable(hub, name, value):
    code = (f"import resource\nsoft, hard = resource.getrlimit(resource.{name})\nprint(soft)\n"
            f"try:\n    resource.setrlimit(resource.{name}, (soft, resource.RLIM_INFINITY))\n"
            "    print('raised')\nexcept (ValueError, OSError):\n    print('refused')")
    out = sandbox_code(hub, code).response["stdout"].split()
    assert out == [str(value), "refused"]


@pytest.mark.parametrize("override", [{"address_space_mb": 512}, {"cpu_seconds": 7}, {"file_size_mb": 3},
                                      {"open_files": 32}])
def test_per_app_override(hub, override):
    limits = ResourceLimits(**override)
    spoke = hub.start(AppSpec(name="sandbox", module=SANDBOX_APP.module, limits=limits))
    assert spoke.process.sandbox.rlimits == rlimits_for(limits)


def test_limits_cannot_switch_a_layer_off():
    from pydantic import ValidationError
    for bad in ({"address_space_mb": 10**9}, {"cpu_seconds": 0}, {"seccomp": False}):
        with pytest.raises(ValidationError):
            ResourceLimits(**bad)


def test_app_can_use_its_own_directory(hub, data_dir):
    code = "open('notes.txt', 'w').write('mine'); import os; os.mkdir('sub'); print(open('notes.txt').read())"
    assert sandbox_code(hub, code).response["stdout"] == "mine\n"
    assert (data_dir / "apps" / "sandbox" / "notes.txt").read_text() == "mine"


def test_app_cannot_read_another_apps_directory(hub, data_dir):
    sandbox_code(hub, "open('diary.txt', 'w').write('secret')", name="alice")
    outcome = sandbox_code(hub, f"print(open({str(data_dir / 'apps' / 'alice' / 'diary.txt')!r}).read())",
                           name="mallory")
    assert outcome.response["error_type"] in ("PermissionError", "FileNotFoundError")


def test_threads_and_lazy_stdlib_imports_work(hub):
    code = ("import threading, decimal, email.mime.text, sqlite3\n"
            "t = threading.Thread(target=lambda: None); t.start(); t.join()\nprint('ok')")
    assert sandbox_code(hub, code).response["stdout"] == "ok\n"


@pytest.mark.skipif(not is_root(), reason="reading another process's memory needs root")
def test_no_hub_secret_in_zygote_or_spoke(data_dir, monkeypatch):
    """Plant a canary key in the hub's environment and memory before starting: neither
    the zygote nor a spoke may hold it anywhere (environment or any mapped page)."""
    from helpers.sandbox.launcher import SpokeLauncher
    from hub.audit import AuditLog
    from hub.broker import SpokeBroker

    monkeypatch.setenv("OPENAI_API_KEY", CANARY)
    held_in_hub_memory = (CANARY + "-object").encode()
    assert memory_contains(os.getpid(), held_in_hub_memory)  # the scan itself can find it
    with SpokeLauncher() as fresh:
        hub = SpokeBroker(fresh, AuditLog(None))
        spoke = hub.start(AppSpec(name="sandbox", module=SANDBOX_APP.module))
        inside = hub.call(spoke, "run_code", {"code": "import os, gc\n"
                          "print(any('sk-canary' in v for v in os.environ.values()))\n"
                          "print(any(isinstance(o, str) and 'sk-canary' in o for o in gc.get_objects()))"})
        assert inside.response["stdout"] == "False\nFalse\n"
        for pid in (fresh.zygote_pid, spoke.process.pid):
            with open(f"/proc/{pid}/environ", "rb") as env:
                assert CANARY.encode() not in env.read()
            assert not memory_contains(pid, CANARY.encode()), f"canary found in memory of pid {pid}"
        hub.close()
    del held_in_hub_memory


def test_spoke_environment_is_clean(hub):
    out = sandbox_code(hub, "import os; print(sorted(os.environ))").response["stdout"]
    names = set(re.findall(r"'([A-Z_]+)'", out))
    assert not names & {"OPENAI_API_KEY", "SECGPT_DATA_DIR", "REDIS_URL", "GOOGLE_APPLICATION_CREDENTIALS"}
    assert names <= {"PATH", "PYTHONPATH", "PYTHONDONTWRITEBYTECODE", "PYTHONHASHSEED", "OPENBLAS_NUM_THREADS",
                     "OMP_NUM_THREADS", "HOME", "LANG", "LC_ALL", "TZ"}


SQLITE = ("import sqlite3\ndb = sqlite3.connect('notes.db')\ndb.execute('create table if not exists t(x)')\n"
          "db.execute('insert into t values (1)')\ndb.commit()\n"
          "print(db.execute('select count(*) from t').fetchone()[0])")


def test_file_locks_only_with_the_manifest_exception(hub):
    """SQLite locks its own files: denied by default (locks are a channel between apps), allowed
    for an app whose manifest names the ``file_locks`` exception, and reported as such."""
    denied = sandbox_code(hub, SQLITE, name="plain")
    assert denied.response["error_type"] in ("OperationalError", "PermissionError"), denied.response
    granted = sandbox_code(hub, SQLITE, name="database", sandbox_exceptions=frozenset({"file_locks"}))
    assert granted.response["stdout"] == "1\n", granted.response
    spoke = hub.start(AppSpec(name="database", module=SANDBOX_APP.module,
                              sandbox_exceptions=frozenset({"file_locks"})))
    assert spoke.process.sandbox.seccomp_exceptions == ["file_locks"]


def test_each_app_has_its_own_uid(hub):
    if not is_root():
        pytest.skip("per-app uids need a root hub")
    uids = {name: sandbox_code(hub, "import os; print(os.getuid(), os.getgid())", name=name).response["stdout"]
            for name in ("alice", "bob")}
    assert uids["alice"] != uids["bob"] and "0 " not in uids["alice"]


def test_no_other_process_is_visible(hub):
    if not (hub.launcher.per_app_uids or hub.launcher.user_namespaces):
        pytest.skip("no private /proc without root or user namespaces (the launcher warned)")
    code = (f"import os\ntry:\n    os.stat('/proc/{os.getpid()}')\n    print('visible')\n"
            "except OSError as e:\n    print(type(e).__name__)")
    assert sandbox_code(hub, code).response["stdout"] in ("FileNotFoundError\n", "PermissionError\n")
