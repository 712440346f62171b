"""The zygote's memory, and that of a child it keeps waiting, out of reach of the hub's user.

Where the hub is not root (and Landlock is missing, and user namespaces too), any process of
the hub user's uid that sees /proc could open /proc/PID/mem of a dumpable zygote or waiting
child, read what it holds and write code into it. Both are not dumpable: such a process is
refused; the control, a process of the same uid started the same way but dumpable, is not.

Run as root: the zygote runs here under an ordinary uid (forked from the tests, its uid
dropped, made dumpable again as the exec by a hub of that user would leave it), and the
attacker is another process of that uid, without privilege.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import select
import socket
from collections.abc import Iterator

import pytest

from helpers.isc.control import CONTROL_FD, SpawnRequest, SpokePreparation, ZygoteStart
from helpers.isc.framing import FrameDecoder, encode_frame
from helpers.sandbox import mounts, seccomp, zygote
from tests.sandbox_helpers import blocked_in, children_of, in_child, is_root

pytestmark = pytest.mark.skipif(not is_root(), reason="runs a zygote and an attacker as another uid")

USER = 65534  # nobody: an ordinary uid, without privilege
PR_SET_DUMPABLE = 4
RECVMSG = seccomp.syscall_number("recvmsg")
ENTRY = "tests.sandbox_helpers:report_prepared"
_libc = ctypes.CDLL(None, use_errno=True)


def _become(uid: int, dumpable: bool) -> None:
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)  # leaves the process not dumpable, as any change of uid does
    if dumpable:  # as an exec by a process of that uid leaves it
        assert _libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) == 0


def _memory_open_to_user(pid: int) -> bool:
    """Whether a process of ``USER`` without privilege can open ``pid``'s memory."""
    def attack() -> bool:
        _become(USER, dumpable=False)
        try:
            with open(f"/proc/{pid}/mem", "rb"):
                return True
        except PermissionError:
            return False
    return bool(in_child(attack))


@contextlib.contextmanager
def _process_of_user(dumpable: bool) -> Iterator[int]:
    """A process of ``USER`` that waits until the block ends (the control's target)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            os.close(write_end)
            _become(USER, dumpable)
            os.read(read_end, 1)
        finally:
            os._exit(0)
    os.close(read_end)
    try:
        yield pid
    finally:
        os.close(write_end)
        os.waitpid(pid, 0)


def _frames(sock: socket.socket, decoder: FrameDecoder) -> dict:
    while True:
        if not select.select([sock], [], [], 30)[0]:
            raise AssertionError("the zygote did not answer")
        data = sock.recv(65536)
        if not data:
            raise AssertionError("the zygote closed its control socket")
        frames = decoder.feed(data)
        if frames:
            return json.loads(frames[0])


@contextlib.contextmanager
def _zygote_of_user(preparation: SpokePreparation) -> Iterator[tuple[socket.socket, FrameDecoder, int]]:
    """The zygote's ``main``, run as ``USER`` and dumpable, as a hub of that user starts it; its
    control socket, decoder and pid."""
    hub_end, zygote_end = socket.socketpair()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            hub_end.close()  # or the zygote would never see the hub go
            os.dup2(zygote_end.fileno(), CONTROL_FD)
            _become(USER, dumpable=True)
            zygote.main()
        finally:
            os._exit(70)
    zygote_end.close()
    decoder = FrameDecoder()
    try:
        hub_end.sendall(encode_frame(ZygoteStart(preload=[], preparation=preparation, pool=1)
                                     .model_dump_json().encode()))
        assert _frames(hub_end, decoder)["pid"] == pid
        yield hub_end, decoder, pid
    finally:
        hub_end.close()  # the zygote kills its children and exits
        os.waitpid(pid, 0)


def _waiting_child(zygote_pid: int) -> int:
    for _ in range(4000):
        ready = [pid for pid in children_of(zygote_pid) if blocked_in(pid) == RECVMSG]
        if ready:
            return ready[0]
        select.select([], [], [], 0.005)
    raise AssertionError("no child forked ahead")


PREPARATIONS = [SpokePreparation(user_namespace=False, network_namespace=False),
                SpokePreparation(user_namespace=True, network_namespace=True)]


@pytest.mark.parametrize("preparation", PREPARATIONS, ids=["no namespaces", "user namespace"])
def test_the_zygote_and_a_waiting_child_are_not_open_to_the_same_user(preparation):
    if preparation.user_namespace and not mounts.user_namespaces_work():
        pytest.skip("this system forbids unprivileged user namespaces")
    with _process_of_user(dumpable=True) as control:
        assert _memory_open_to_user(control)  # the control: a dumpable process of that uid is open to it
    with _zygote_of_user(preparation) as (ctl, decoder, zygote_pid):
        waiting = _waiting_child(zygote_pid)
        assert not _memory_open_to_user(zygote_pid), "the zygote's memory is open to its user"
        assert not _memory_open_to_user(waiting), "a waiting child's memory is open to its user"
        # Its preparation (in a user namespace: its id maps, written while it was briefly
        # dumpable) succeeded, and it is handed its spoke not dumpable.
        hub_side, spoke_side = socket.socketpair()
        try:
            socket.send_fds(ctl, [encode_frame(SpawnRequest(serial=1, entry=ENTRY).model_dump_json().encode())],
                            [spoke_side.fileno()])
            spoke_side.close()
            assert _frames(ctl, decoder)["pid"] == waiting
            assert select.select([hub_side], [], [], 30)[0], "the spoke did not report"
            report = json.loads(hub_side.recv(65536))
        finally:
            hub_side.close()
        assert report["pid"] == waiting and report["zygote_pid"] == zygote_pid
        assert report["error"] is None and report["dumpable"] == 0
