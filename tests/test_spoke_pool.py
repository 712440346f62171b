"""Spokes forked ahead (helpers/sandbox/zygote.py, confine.prepare): the zygote keeps a child
waiting that has done only what is the same for every app, and hands it one spoke.

* A waiting child holds nothing of an earlier spoke: no descriptor but /dev/null, its one
  hand-over socket and its namespace handle (the zygote, the control, holds more), and none of
  an earlier app's settings in its memory (that app's own spoke, the control, holds them).
* It is handed one app, once: a second hand-over is refused, or dropped unread if it was
  queued before the first was read; a fresh child, the control, takes the same hand-over.
* A spoke from the pool is confined exactly as one forked on request: the same report, the
  same filter (the pid written into the zygote's template is its own: it may signal itself,
  not its parent), byte for byte the filter compiled for its pid.
* A preparation that does not match the confinement, or that another process made, is refused.
* A child that died waiting is passed over and replaced at once; children waiting end with the
  zygote. A child forked on the spot (none waiting) becomes the spoke however slowly it starts,
  and every spoke is told the pid of the zygote that forked it, even once that is gone.
* The template is refused for a filter that uses its pid otherwise than the probes show.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import time
from collections import deque

import pyseccomp as sc
import pytest

from helpers.isc.control import SpokePreparation, SpokeProfile, preparation_for
from helpers.sandbox import app_dirs, confine, seccomp, zygote
from helpers.sandbox.app_spec import AppSpec
from helpers.sandbox.launcher import SpokeLauncher
from helpers.sandbox.policy import POLICY_EXCEPTIONS
from helpers.sandbox.sandbox import SANDBOX_APP
from helpers.utilities.errors import SandboxError
from hub.audit import AuditLog
from hub.broker import SpokeBroker
from tests.sandbox_helpers import (
    blocked_in,
    children_of,
    descriptors,
    in_child,
    is_root,
    memory_contains,
)

ENTRY = b"tests.sandbox_helpers:report_handed"
RECVMSG = seccomp.syscall_number("recvmsg")
# A waiting child is not dumpable: only root may read what it is blocked in (/proc/PID/syscall).
LOOKS_INTO_WAITING = pytest.mark.skipif(not is_root(), reason="finding a waiting child needs root: it is not dumpable")
APP = AppSpec(name="sandbox", module=SANDBOX_APP.module)


def _until(condition, what: str, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)
    return value


def _waiting_child(launcher: SpokeLauncher, spokes: set[int] = frozenset()) -> int:
    """The zygote's child forked ahead (not one of ``spokes``), once it waits for its hand-over."""
    def waiting() -> int | None:
        candidates = children_of(launcher.zygote_pid) - set(spokes)
        ready = [pid for pid in candidates if blocked_in(pid) == RECVMSG]
        return ready[0] if len(ready) == 1 else None
    return _until(waiting, "a child forked ahead")


@pytest.fixture(scope="module")
def unpooled():
    """A launcher whose zygote forks each spoke on request (the control)."""
    with SpokeLauncher(pool=0) as started:
        yield started


# --- what a waiting child holds ---------------------------------------------------------------------------

@LOOKS_INTO_WAITING
def test_a_waiting_child_holds_no_descriptor_of_the_zygote(launcher, hub):
    spoke = hub.start(APP)
    waiting = _waiting_child(launcher, {spoke.process.pid})
    held = descriptors(waiting)
    sockets = [fd for fd, what in held.items() if what.startswith("socket:")]
    others = {what for fd, what in held.items() if fd not in sockets and what != "/dev/null"}
    assert len(sockets) == 1, f"a waiting child holds {len(sockets)} sockets: {held}"
    assert others <= {f"/proc/{waiting}/ns"}, others  # the handle its report is measured through
    # The control: the zygote itself holds its control socket and the waiting child's hand-over.
    assert len([w for w in descriptors(launcher.zygote_pid).values() if w.startswith("socket:")]) >= 2


@pytest.mark.skipif(not is_root(), reason="reading other processes' memory needs root")
def test_a_waiting_child_holds_no_earlier_apps_settings(launcher, hub):
    secret = f"pool-secret-{os.urandom(8).hex()}"
    alpha = hub.start(AppSpec(name="alpha", module=SANDBOX_APP.module, profile=SpokeProfile(
        kind="app", app="alpha", settings={"api_token": secret})))
    assert hub.call(alpha, "run_code", {"code": "print(hub.settings['api_token'][:12])"}).response[
        "stdout"] == "pool-secret-\n"
    beta = hub.start(AppSpec(name="beta", module=SANDBOX_APP.module))  # takes the child forked before
    waiting = _waiting_child(launcher, {alpha.process.pid, beta.process.pid})  # forked after alpha ran
    assert memory_contains(alpha.process.pid, secret.encode())  # the control: the scan finds it there
    assert not memory_contains(waiting, secret.encode()), "a waiting child holds an earlier app's setting"


# --- one hand-over, once -----------------------------------------------------------------------------------

def _fork_waiting() -> zygote._Waiting:
    """A child forked ahead from this process, as the zygote forks one (no namespaces to prepare)."""
    ctl, other = socket.socketpair()
    wake = os.pipe()
    try:
        return zygote._fork_ahead(ctl, wake, SpokePreparation(user_namespace=False, network_namespace=False), None)
    finally:
        for fd in (ctl.detach(), other.detach(), *wake):
            os.close(fd)


def _report(sock: socket.socket, timeout: float = 20.0) -> dict:
    if not select.select([sock], [], [], timeout)[0]:
        raise AssertionError("the handed child did not report")
    return json.loads(sock.recv(65536))


def _finish(child: zygote._Waiting, *socks: socket.socket) -> None:
    for sock in socks:
        sock.close()
    child.handoff.close()
    _, status = os.waitpid(child.pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def test_a_child_is_handed_one_app_only():
    child = _fork_waiting()
    first_hub, first_spoke = socket.socketpair()
    second_hub, second_spoke = socket.socketpair()
    # The control: a waiting child takes a hand-over, and runs the program it names on that socket.
    socket.send_fds(child.handoff, [ENTRY], [first_spoke.fileno()])
    first_spoke.close()
    report = _report(first_hub)
    assert report["pid"] == child.pid
    assert [fd for fd, what in report["fds"].items() if what.startswith("socket:")] == ["3"]
    # Once handed, its hand-over socket is closed: a second app cannot reach it.
    with pytest.raises(OSError):
        socket.send_fds(child.handoff, [ENTRY], [second_spoke.fileno()])
    _finish(child, first_hub, second_hub, second_spoke)


def test_a_second_hand_over_queued_early_is_dropped_unread():
    child = _fork_waiting()
    first_hub, first_spoke = socket.socketpair()
    second_hub, second_spoke = socket.socketpair()
    for spoke in (first_spoke, second_spoke):  # both before the child reads any
        socket.send_fds(child.handoff, [ENTRY], [spoke.fileno()])
        spoke.close()
    report = _report(first_hub)  # the control: the first is taken
    assert [fd for fd, what in report["fds"].items() if what.startswith("socket:")] == ["3"]
    # The second went with the closed hand-over socket: nothing holds its spoke end any more.
    assert select.select([second_hub], [], [], 10)[0] and second_hub.recv(1) == b""
    _finish(child, first_hub, second_hub)


# --- same confinement, from the pool or not -----------------------------------------------------------------

SIGNALS = ("import os\nfor target in (os.getpid(), os.getppid()):\n    try:\n        os.kill(target, 0)\n"
           "        print('sent')\n    except PermissionError:\n        print('refused')\n"
           "try:\n    os.fork()\nexcept PermissionError:\n    print('no fork')")


@LOOKS_INTO_WAITING
def test_a_spoke_from_the_pool_is_confined_as_one_forked_on_request(launcher, unpooled, data_dir):
    pooled_hub, fresh_hub = SpokeBroker(launcher, AuditLog(None)), SpokeBroker(unpooled, AuditLog(None))
    try:
        assert children_of(unpooled.zygote_pid) == set()  # the control: nothing forked ahead there
        waiting = _waiting_child(launcher)
        pooled, fresh = pooled_hub.start(APP), fresh_hub.start(APP)
        assert pooled.process.pid == waiting  # it came from the pool
        assert pooled.process.sandbox == fresh.process.sandbox
        # The filter's pid is each spoke's own (the template's was written in): it may signal
        # itself, not its parent (the zygote); and it still cannot fork.
        for hub, spoke in ((pooled_hub, pooled), (fresh_hub, fresh)):
            assert hub.call(spoke, "run_code", {"code": SIGNALS}).response["stdout"].split() == [
                "sent", "refused", "no", "fork"]
    finally:
        pooled_hub.close()
        fresh_hub.close()


@pytest.mark.parametrize("exceptions", [(), *((name,) for name in POLICY_EXCEPTIONS)])
def test_the_template_gives_the_filter_compiled_for_the_pid(exceptions):
    template = seccomp.Template(exceptions)
    pid = os.getpid()
    compiled = seccomp.compile_filter(pid, exceptions).code
    assert template.for_pid(pid).code == compiled
    # The control: the template as compiled (for a made-up pid) is not that filter, nor is one for another pid.
    assert template.code != compiled and template.for_pid(pid + 1).code != compiled


def _rule_on_high_bits(f: sc.SyscallFilter, own_pid: int) -> None:
    f.add_rule(sc.ALLOW, seccomp.syscall_number("tkill"), sc.Arg(0, sc.MASKED_EQ, 0xFFFF0000, own_pid & 0xFFFF0000))


def _rule_for_real_pids_only(f: sc.SyscallFilter, own_pid: int) -> None:
    if own_pid < 1 << 22:  # pid_max's limit: never for a made-up pid above it
        f.add_rule(sc.ALLOW, seccomp.syscall_number("tkill"), sc.Arg(0, sc.MASKED_EQ, 0xFFFFFFFF, 7))


@pytest.mark.parametrize("rule", [_rule_on_high_bits, _rule_for_real_pids_only])
def test_a_filter_that_uses_its_pid_otherwise_gets_no_template(monkeypatch, rule):
    """Made-up rules a later policy could hold: the template must not then silently differ from
    the filter compiled for the pid (the zygote falls back to compiling one per child)."""
    built = seccomp.build_filter

    def with_rule(own_pid: int, exceptions=()):
        f = built(own_pid, exceptions)
        rule(f, own_pid)
        return f
    pid = os.getpid()
    unchanged = seccomp.compile_filter(pid).code
    monkeypatch.setattr(seccomp, "build_filter", with_rule)
    assert seccomp.compile_filter(pid).code != unchanged  # the control: the rule is in the filter
    with pytest.raises(SandboxError, match="no template|beyond the pid"):
        seccomp.Template()


def _confinement(launcher: SpokeLauncher):
    policy = APP.policy()
    spec = launcher.confinement(policy, APP.module).model_copy(update={"rlimits": {}})
    app_dirs.prepare_app_dir(policy.data_dir, None if spec.uid is None else (spec.uid, spec.gid))
    return spec


def test_a_spoke_prepared_otherwise_refuses_its_confinement(launcher, data_dir):
    spec = _confinement(launcher)
    right = preparation_for(spec)
    wrong = right.model_copy(update={"network_namespace": not right.network_namespace})
    parent = os.getpid()

    def confined(preparation: SpokePreparation):
        return lambda: confine.confine(spec, parent, confine.prepare(preparation)).model_dump(mode="json")
    assert in_child(confined(right))["seccomp"]  # the control
    with pytest.raises(AssertionError, match="prepared for|preparation failed"):
        in_child(confined(wrong))


def test_a_preparation_made_by_another_process_is_refused(launcher, data_dir):
    spec = _confinement(launcher).model_copy(update={"uid": None, "gid": None, "user_namespace": False,
                                                     "network_namespace": False})
    parent = os.getpid()
    theirs = confine.prepare(preparation_for(spec))  # here, in the parent: harmless without namespaces
    try:
        assert in_child(lambda: confine.confine(spec, parent, confine.prepare(preparation_for(spec)))
                        .model_dump(mode="json"))["seccomp"]  # the control: its own
        with pytest.raises(AssertionError, match="made by another process"):
            in_child(lambda: confine.confine(spec, parent, theirs).model_dump(mode="json"))
    finally:
        assert theirs.namespaces is not None
        theirs.namespaces.close()


# --- life of the pool ---------------------------------------------------------------------------------------

@LOOKS_INTO_WAITING
def test_a_child_that_died_waiting_is_passed_over(launcher, hub):
    waiting = _waiting_child(launcher)
    os.kill(waiting, signal.SIGKILL)
    spoke = hub.start(APP)
    assert spoke.process.pid != waiting
    assert hub.call(spoke, "run_code", {"code": "print('started')"}).response["stdout"] == "started\n"


@LOOKS_INTO_WAITING
def test_a_child_that_died_waiting_is_replaced_at_once():
    with SpokeLauncher() as own:
        waiting = _waiting_child(own)
        os.kill(waiting, signal.SIGKILL)
        # No control message in between: the zygote forks its replacement as it reaps the dead one.
        assert _waiting_child(own, {waiting}) != waiting


def test_a_child_forked_on_the_spot_becomes_the_spoke_however_slowly_it_starts(monkeypatch):
    """None waiting: the zygote forks one and names it at once; the child, held in its start
    until it has been named (a child slowed down, CPU-starved or swapping), must then become the
    spoke, not die because the zygote no longer waits for its answer."""
    prepare = confine.prepare

    def held(*args, **kwargs):
        signal.sigwait({signal.SIGUSR1})  # blocked since before the fork: released below
        return prepare(*args, **kwargs)
    monkeypatch.setattr(confine, "prepare", held)
    hub_end, spoke_end = socket.socketpair()
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
    try:
        pid = zygote._hand_over(deque(), _fork_waiting, ENTRY.decode(), spoke_end.fileno())
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        spoke_end.close()
    os.kill(pid, signal.SIGUSR1)
    try:
        assert _report(hub_end)["pid"] == pid  # the spoke named is the one that runs, on that socket
    finally:
        hub_end.close()
        _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def test_a_spoke_is_told_the_zygote_that_forked_it_even_once_that_is_gone():
    here, there = socket.socketpair()
    forker = os.fork()
    if forker == 0:  # pragma: no cover - child: a zygote that forks one child ahead, then dies
        try:
            child = _fork_waiting()
            socket.send_fds(there, [str(child.pid).encode()], [child.handoff.fileno()])
        finally:
            os._exit(0)
    there.close()
    message, fds, _, _ = socket.recv_fds(here, 64, 1)
    here.close()
    os.waitpid(forker, 0)  # gone before its child is handed anything
    pid, handoff = int(message), socket.socket(fileno=fds[0])
    hub_end, spoke_end = socket.socketpair()
    try:
        socket.send_fds(handoff, [b"tests.sandbox_helpers:report_prepared"], [spoke_end.fileno()])
        spoke_end.close()
        report = _report(hub_end)
        assert report["pid"] == pid
        assert report["ppid"] != forker  # the control: its parent now is another process
        assert report["zygote_pid"] == forker
    finally:
        hub_end.close()
        handoff.close()
    _until(lambda: not _alive(pid), "the orphaned child to end")


@LOOKS_INTO_WAITING
def test_children_waiting_end_with_the_zygote():
    with SpokeLauncher() as own:
        waiting = _waiting_child(own)
        assert os.path.exists(f"/proc/{waiting}")  # the control: alive while the zygote is
    _until(lambda: not _alive(waiting), "the waiting child to end")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
