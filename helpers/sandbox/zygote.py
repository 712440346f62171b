"""Runs in: zygote (and, after each fork, the new spoke's first instructions).

The zygote: a clean process that imports the heavy libraries once and forks spokes.

Started by the hub's launcher with a scrubbed environment (no API key, no user
data) and a fresh interpreter, so nothing of the hub's memory is ever copied
into an app. It runs no app code itself: app modules are imported only in a
spoke, after the spoke has confined itself. It must never parse anything
app-specific either: every spoke is forked from its heap, so whatever it read
about app A (a setting, a data path) would be in app B's memory. What it preloads
and what a spoke runs are named by the hub (``zygote_start``, then each spawn
request's entry, the same for every app); a spawn request is that, a serial
number and a socket; the spoke learns its confinement and profile
from the hub on that socket, after the fork (``helpers.isc.spoke_start``). It
dies with the hub, and its spokes die with it.

Forked ahead: the zygote keeps ``pool`` children waiting (``ZygoteStart``), each of
which has done only its app-independent start (``confine.prepare``: namespaces, the
default seccomp program) and holds nothing but /dev/null and its own hand-over socket.
A spawn request hands the oldest one the spoke's socket and entry, once: the child closes
its hand-over socket as soon as it has read the first, so it can never be handed a second
app. The pool is refilled after each hand-over and after a waiting child died; with none
waiting, a child is forked on the spot, goes through the same steps and is named at once.

Not dumpable (PR_SET_DUMPABLE 0), the zygote and every child it forks: a process of the
same uid (the hub's user, when the hub is not root) can then neither open their memory
through /proc/PID/mem nor trace them. The one write that needs a dumpable process, a new
user namespace's id maps, is bracketed in ``mounts.enter_user_namespace``.
"""

from __future__ import annotations

import array
import ctypes
import gc
import importlib
import os
import select
import signal
import socket
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from helpers.isc import spoke_start
from helpers.isc.control import (
    CONTROL_ADAPTER,
    CONTROL_FD,
    ControlMessage,
    Spawned,
    SpawnRequest,
    SpokeExited,
    SpokePreparation,
    ZygoteReady,
    ZygoteStart,
)
from helpers.isc.framing import FrameDecoder, FrameTooLarge, encode_frame
from helpers.sandbox import confine, seccomp
from helpers.utilities.errors import SandboxError

SPOKE_FD = 3    # in a spoke, its channel to the hub
MAX_ENTRY = 1024  # bytes of a hand-over message (the entry, ``module:function``)
TAKEN = b"\x01"   # a child's answer to its hand-over: it holds the spoke's socket now
TAKE_TIMEOUT = 5.0  # for a child of the pool to take its hand-over, else it is passed over
PR_SET_DUMPABLE = 4
_libc = ctypes.CDLL(None, use_errno=True)
# Compiled (never run) by a child while it waits: a fork's first compile pages in the
# compiler (about 0.7 ms here), which then happens before the hub names an app, not while
# the spoke compiles the app's module. Made up, and the same for every app.
REHEARSAL_SOURCE = """
from __future__ import annotations
import os
class Rehearsal:
    value: int = 1
    def method(self, a, *b, c=None, **d) -> dict[str, int]:
        try:
            return {f"{k}-{a!r}": v for k, v in d.items() if v is not None}
        except (KeyError, ValueError) as exc:
            raise RuntimeError(str(exc)) from exc
        finally:
            pass
async def rehearse(x):
    async with x as y:
        await y
    return [i async for i in y]
SHAPES = lambda z: (z, [1, 2.0], {"a": b"b"}, {3}, ...)
"""


def _send(ctl: socket.socket, message: ControlMessage) -> None:
    ctl.sendall(encode_frame(message.model_dump_json().encode()))


def main() -> None:
    # `python -c` puts the working directory first on the path; a spoke's working directory is
    # its own writable data directory, so that entry would import whatever the app left there.
    sys.path[:] = [p for p in sys.path if p not in ("", ".")]
    # First, before it reads anything: no process of the same uid may read or write this
    # process's memory (/proc/PID/mem, ptrace), nor that of any child it forks (inherited).
    if _libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        raise SandboxError(f"zygote: prctl(PR_SET_DUMPABLE) failed: {os.strerror(ctypes.get_errno())}")
    parent = os.getppid()
    _libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG: die with the hub
    if os.getppid() != parent:
        os._exit(1)
    ctl = socket.socket(fileno=CONTROL_FD)
    decoder = FrameDecoder()
    start = _first_message(ctl, decoder)
    started = time.perf_counter()
    for name in start.preload:
        importlib.import_module(name)
    try:  # every spoke's default filter, but for its pid (app-independent: no exceptions)
        template: seccomp.Template | None = seccomp.Template()
    except SandboxError:  # a libseccomp that lays the filter out otherwise: each spoke compiles its own
        template = None
    # Move everything imported so far out of the collector's reach: spokes then share these
    # pages with the zygote instead of copying them when the collector touches them.
    gc.collect()
    gc.freeze()
    _send(ctl, ZygoteReady(pid=os.getpid(), preload_ms=(time.perf_counter() - started) * 1000))
    _serve(ctl, decoder, start, template)


def _first_message(ctl: socket.socket, decoder: FrameDecoder) -> ZygoteStart:
    """The hub's ``zygote_start``, read before anything is preloaded or forked."""
    while True:
        data = ctl.recv(65536)
        if not data:
            os._exit(0)  # the hub is gone before it said anything
        frames = decoder.feed(data)
        if frames:
            message = _control(frames[0])
            if not isinstance(message, ZygoteStart) or len(frames) > 1:
                raise RuntimeError(f"zygote: expected zygote_start first, got {message!r}")
            return message


def _control(frame: bytes | FrameTooLarge) -> ControlMessage:
    """A frame from the hub, which is trusted: a bad one is a bug, and stops the zygote loudly."""
    if isinstance(frame, FrameTooLarge):
        raise RuntimeError(f"zygote: control frame of {frame.size} bytes is over the limit")
    return CONTROL_ADAPTER.validate_json(frame)


@dataclass
class _Waiting:
    """A child forked ahead, prepared, waiting on ``handoff`` for the one spoke it will be."""

    pid: int
    handoff: socket.socket


def _serve(ctl: socket.socket, decoder: FrameDecoder, start: ZygoteStart, template: seccomp.Template | None) -> None:
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    fds: list[int] = []
    spokes: set[int] = set()  # handed over: the hub hears of their exits
    pool: deque[_Waiting] = deque()

    def fork() -> _Waiting:
        return _fork_ahead(ctl, (wake_r, wake_w), start.preparation, template)

    _refill(pool, start.pool, fork)
    # Waiting children replaced after they died, since the last control message: bounded, so that
    # a child that dies as soon as it is forked cannot keep the zygote forking.
    replaced = 0
    while True:
        readable, _, _ = select.select([ctl.fileno(), wake_r], [], [])
        if wake_r in readable:
            while True:
                try:
                    if not os.read(wake_r, 512):
                        break
                except BlockingIOError:
                    break
            missing = start.pool - len(pool)
            _reap(ctl, spokes, pool)
            died = start.pool - len(pool) - missing
            if died and not fds and replaced < start.pool:
                replaced += died
                _refill(pool, start.pool, fork)
        if ctl.fileno() not in readable:
            continue
        try:
            data, ancdata, _, _ = ctl.recvmsg(65536, socket.CMSG_SPACE(16 * array.array("i").itemsize))
        except ConnectionResetError:  # the hub closed with our reports unread: it is gone all the same
            data, ancdata = b"", []
        for level, kind, payload in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                received = array.array("i")
                received.frombytes(payload[: len(payload) - len(payload) % received.itemsize])
                fds.extend(received)
        if not data:  # the hub is gone: take every spoke with us
            for pid in [*spokes, *(waiting.pid for waiting in pool)]:
                os.kill(pid, signal.SIGKILL)
            os._exit(0)
        replaced = 0
        for frame in decoder.feed(data):
            request = _control(frame)
            # (a serial number: nothing about the app, whose setup the spoke reads after the fork)
            if not isinstance(request, SpawnRequest) or not fds:
                raise RuntimeError(f"zygote: unexpected control message {request!r}")
            spoke_fd = fds.pop(0)
            try:
                pid = _hand_over(pool, fork, request.entry, spoke_fd)
            finally:
                os.close(spoke_fd)
            spokes.add(pid)
            _send(ctl, Spawned(serial=request.serial, pid=pid))
        # Requests whose frames are still to come first: their sockets wait in ``fds``. (A child
        # forked while the zygote holds spokes' sockets, as one forked on the spot does, closes
        # every descriptor but its hand-over socket before anything else.)
        if not fds:
            _refill(pool, start.pool, fork)


def _refill(pool: deque[_Waiting], size: int, fork: Callable[[], _Waiting]) -> None:
    while len(pool) < size:
        pool.append(fork())


def _hand_over(pool: deque[_Waiting], fork: Callable[[], _Waiting], entry: str, spoke_fd: int) -> int:
    """Give the spoke's socket and entry to a waiting child (the oldest) and return its pid once
    it says it took them. A child that died waiting (before or while it was handed them: the
    socket in flight is then released with its own), or that does not answer within
    TAKE_TIMEOUT, is passed over. With none waiting, a child forked now is handed them and
    named at once, unawaited, as a spoke forked on request always was: there is no other child
    to pass over to (if it dies, the hub finds its socket closed), and however slowly it starts,
    the zygote goes on serving."""
    while pool:
        child = pool.popleft()
        if _taken(child, entry, spoke_fd):
            child.handoff.close()
            return child.pid
        # Killed before its hand-over socket is closed: a child that finds that socket closed
        # when it answers is then already dying, unless it is one named unawaited (below).
        _kill(child.pid)
        child.handoff.close()
    child = fork()
    try:
        socket.send_fds(child.handoff, [entry.encode()], [spoke_fd])
    except OSError:
        pass  # it died already: the spoke's socket goes with the zygote's copy, closed by the caller
    finally:
        child.handoff.close()  # queued, the hand-over is still read; the child's answer is not
    return child.pid


def _taken(child: _Waiting, entry: str, spoke_fd: int) -> bool:
    """Whether ``child`` took the hand-over (answered TAKEN within TAKE_TIMEOUT)."""
    try:
        socket.send_fds(child.handoff, [entry.encode()], [spoke_fd])
        return bool(select.select([child.handoff], [], [], TAKE_TIMEOUT)[0]) and child.handoff.recv(1) == TAKEN
    except OSError:
        return False


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _fork_ahead(ctl: socket.socket, wake: tuple[int, int], preparation: SpokePreparation,
                template: seccomp.Template | None) -> _Waiting:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    zygote_pid = os.getpid()  # the child's parent, read before the fork: later it may be gone
    pid = os.fork()
    if pid == 0:
        ours.close()
        _wait_to_become_spoke(ctl, wake, theirs, preparation, template, zygote_pid)
    theirs.close()
    return _Waiting(pid=pid, handoff=ours)


def _reap(ctl: socket.socket, spokes: set[int], pool: deque[_Waiting]) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        for waiting in [w for w in pool if w.pid == pid]:  # died waiting: never the hub's
            pool.remove(waiting)
            waiting.handoff.close()
        if pid not in spokes:
            continue
        spokes.discard(pid)
        _send(ctl, SpokeExited(
            pid=pid,
            exit_code=os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
            signal=os.WTERMSIG(status) if os.WIFSIGNALED(status) else None))


def _wait_to_become_spoke(ctl: socket.socket, wake: tuple[int, int], handoff: socket.socket,
                          preparation: SpokePreparation, template: seccomp.Template | None,
                          zygote_pid: int) -> None:
    """In the forked child: drop every descriptor of the zygote's, prepare, wait for the one
    hand-over, then run the spoke program it names (``module:function``, called with the
    channel's fd, the zygote's pid, ``zygote_pid``, and the preparation); never returns."""
    code = 70
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        null = os.open("/dev/null", os.O_RDWR)
        ctl.detach()
        # fd 3, the zygote's control socket, becomes /dev/null, holding the place of the spoke's channel.
        for fd in (0, 1, 2, SPOKE_FD):
            os.dup2(null, fd)
        keep = handoff.fileno()
        if keep <= SPOKE_FD:
            raise RuntimeError("zygote: a hand-over socket below the spoke's channel")
        os.closerange(SPOKE_FD + 1, keep)  # the wake pipe, other children's hand-over sockets, ...
        os.closerange(keep + 1, os.sysconf("SC_OPEN_MAX"))
        prepared = confine.prepare(preparation, template)
        spoke_start.rehearse()
        compile(REHEARSAL_SOURCE, "<rehearsal>", "exec")
        # Forget the directory listings the zygote cached for imports (a module written since
        # in the same clock tick would look absent): re-read on first use, which in a spoke is
        # the app's import, in its own mount view (its start code is all loaded already).
        importlib.invalidate_caches()
        entry, fds, _, _ = socket.recv_fds(handoff, MAX_ENTRY, 1)
        if not fds:  # the zygote is gone (or sent nothing to run): nothing to become
            code = 0
            return
        try:
            handoff.send(TAKEN)
        except OSError:  # named unawaited (forked on the spot): the zygote no longer listens
            pass
        handoff.close()  # read once: nothing can hand this child a second app
        os.dup2(fds[0], SPOKE_FD)
        os.close(fds[0])
        module, _, function = entry.decode().partition(":")
        code = getattr(importlib.import_module(module), function)(SPOKE_FD, zygote_pid=zygote_pid,
                                                                  prepared=prepared)
    except BaseException:  # noqa: BLE001 - a spoke must never fall back into the zygote loop
        code = 70
    finally:
        os._exit(code)


if __name__ == "__main__":
    main()
