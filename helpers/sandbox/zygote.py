"""The zygote: a clean process that imports the heavy libraries once and forks spokes.

Runs in: zygote (and, after each fork, the new spoke's first instructions).

Started by the hub's launcher with a scrubbed environment (no API key, no user
data) and a fresh interpreter, so nothing of the hub's memory is ever copied
into an app. It runs no app code itself: app modules are imported only in a
spoke, after the spoke has confined itself. It must never parse anything
app-specific either: every spoke is forked from its heap, so whatever it read
about app A (a setting, a data path) would be in app B's memory. A spawn request
is a serial number and a socket; the spoke learns its confinement and profile
from the hub on that socket, after the fork (``helpers.isc.spoke_start``). It
dies with the hub, and its spokes die with it.
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

from helpers.isc.control import CONTROL_ADAPTER, SpawnRequest, Spawned, SpokeExited, ZygoteReady
from helpers.isc.framing import FrameDecoder, encode_frame

CONTROL_FD = 3  # the control socket, passed by the launcher
SPOKE_FD = 3    # in a spoke, its channel to the hub
# Trusted libraries every spoke uses; imported here once so a spoke starts in milliseconds.
PRELOAD = (
    "json", "asyncio", "threading", "contextlib", "io", "traceback", "base64",
    "pydantic", "jsonschema",
    "langchain_core.messages", "langchain_core.tools", "langchain_core.language_models",
    "helpers.isc.channel", "helpers.sandbox.confine", "spoke.spoke", "spoke.tools",
    "spoke.hub_model",
    # the Google apps' client stack (pure Python; imported once here instead of in every spoke)
    "httplib2", "googleapiclient.discovery", "googleapiclient.errors", "google_auth_httplib2",
    "google.oauth2.credentials", "google.auth.credentials",
)
_libc = ctypes.CDLL(None, use_errno=True)


def _send(ctl: socket.socket, message) -> None:
    ctl.sendall(encode_frame(message.model_dump_json().encode()))


def main() -> None:
    # `python -c` puts the working directory first on the path; a spoke's working directory is
    # its own writable data directory, so that entry would import whatever the app left there.
    sys.path[:] = [p for p in sys.path if p not in ("", ".")]
    parent = os.getppid()
    _libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG: die with the hub
    if os.getppid() != parent:
        os._exit(1)
    started = time.perf_counter()
    for name in PRELOAD:
        importlib.import_module(name)
    # Move everything imported so far out of the collector's reach: spokes then share these
    # pages with the zygote instead of copying them when the collector touches them.
    gc.collect()
    gc.freeze()
    ctl = socket.socket(fileno=CONTROL_FD)
    _send(ctl, ZygoteReady(pid=os.getpid(), preload_ms=(time.perf_counter() - started) * 1000))
    _serve(ctl, parent)


def _serve(ctl: socket.socket, hub_pid: int) -> None:
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    decoder = FrameDecoder()
    fds: list[int] = []
    children: set[int] = set()
    while True:
        readable, _, _ = select.select([ctl, wake_r], [], [])
        if wake_r in readable:
            while True:
                try:
                    if not os.read(wake_r, 512):
                        break
                except BlockingIOError:
                    break
            _reap(ctl, children)
        if ctl not in readable:
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
            for pid in children:
                os.kill(pid, signal.SIGKILL)
            os._exit(0)
        for frame in decoder.feed(data):
            request = CONTROL_ADAPTER.validate_json(frame)  # the hub is trusted; a bad frame is a bug
            # (a serial number: nothing about the app, whose setup the spoke reads after the fork)
            if not isinstance(request, SpawnRequest) or not fds:
                raise RuntimeError(f"zygote: unexpected control message {request!r}")
            spoke_fd = fds.pop(0)
            pid = os.fork()
            if pid == 0:
                _become_spoke(ctl, (wake_r, wake_w), spoke_fd)
            os.close(spoke_fd)
            children.add(pid)
            _send(ctl, Spawned(serial=request.serial, pid=pid))


def _reap(ctl: socket.socket, children: set[int]) -> None:
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        children.discard(pid)
        _send(ctl, SpokeExited(
            pid=pid,
            exit_code=os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
            signal=os.WTERMSIG(status) if os.WIFSIGNALED(status) else None))


def _become_spoke(ctl: socket.socket, wake: tuple[int, int], spoke_fd: int) -> None:
    """In the forked child: never returns."""
    code = 70
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        ctl.detach()  # fd 3 is about to become the spoke's channel
        for fd in wake:
            os.close(fd)
        if spoke_fd != SPOKE_FD:
            os.dup2(spoke_fd, SPOKE_FD)
            os.close(spoke_fd)
        null = os.open("/dev/null", os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.closerange(SPOKE_FD + 1, os.sysconf("SC_OPEN_MAX"))
        from spoke.spoke import run_spoke
        code = run_spoke(SPOKE_FD, zygote_pid=os.getppid())
    except BaseException:  # noqa: BLE001 - a spoke must never fall back into the zygote loop
        code = 70
    finally:
        os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
