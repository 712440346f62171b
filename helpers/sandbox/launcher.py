"""Runs in: hub.

The hub's side of spoke creation: start the zygote, ask it for spokes, stop them.

The launcher decides each spoke's confinement (from ``SpokePolicy``) and hands
the zygote one end of a fresh socketpair, with nothing else: the zygote learns
nothing about the app. The hub keeps the other end, which is how it knows, for
every message, which spoke sent it, and on it runs the start protocol
(``helpers.isc.spoke_start``): confinement to the spoke, the spoke's sandbox
report back before any app code runs (the one the hub keeps), then the profile.
Spokes are killed through a pidfd (no pid-reuse race); their exit status comes
from the zygote, their parent.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from helpers.configs import paths
from helpers.isc import spoke_start
from helpers.isc.channel import Channel
from helpers.isc.control import (
    CONTROL_ADAPTER,
    CONTROL_FD,
    Confinement,
    ControlMessage,
    Spawned,
    SpawnRequest,
    SpokeExited,
    SpokePreparation,
    SpokeProfile,
    ZygoteReady,
    ZygoteStart,
)
from helpers.isc.framing import FrameDecoder, FrameTooLarge, encode_frame
from helpers.isc.messages import ErrorMessage, SandboxReport
from helpers.isc.spoke_start import ConfineRequest, LoadRequest, SpokeConfined, SpokeReady
from helpers.sandbox import app_dirs, landlock, mounts, server_process
from helpers.sandbox.policy import SpokePolicy, spoke_identity, zygote_environment
from helpers.utilities.errors import ProtocolError, SandboxError, SpokeError

_Start = TypeVar("_Start", SpokeConfined, SpokeReady)
_Control = TypeVar("_Control", Spawned, ZygoteReady)

ZYGOTE_START_TIMEOUT = 120.0
SPAWN_TIMEOUT = 30.0
SEND_TIMEOUT = 5.0
DEFAULT_POOL = 1  # children kept forked ahead: spokes start one at a time, and each hand-over forks the next
USERNS_WARNING = (
    "WARNING: no unprivileged user namespaces (this system forbids them, e.g. by a sysctl or Ubuntu's "
    "AppArmor restriction, or they were turned off): spokes run WITHOUT a private mount view, network "
    "namespace or IPC namespace, and as your own uid; Landlock, seccomp and rlimits still apply. Run the "
    "hub as root, or allow user namespaces, for every layer.")
LANDLOCK_WARNING = (
    "WARNING: this kernel has no Landlock (Linux >= 5.13 with 'landlock' in the LSM list): "
    "spokes run WITHOUT filesystem confinement; seccomp, rlimits and the private mount view still apply.")


@dataclass(frozen=True)
class SpokeProgram:
    """What the zygote runs as a spoke, named as data: ``entry`` is called in each new spoke with
    its channel's fd; ``preload`` is imported once in the zygote so a spoke starts in milliseconds.
    Only trusted project and library modules belong here: the zygote imports them before any
    fork, so they sit in every spoke's memory."""

    entry: str
    preload: tuple[str, ...]


# The spoke program (spoke/spoke.py). Named, not imported: helpers/ never imports spoke/
# (ARCHITECTURE.md, "Trust domains"); the hub's launcher tells the zygote what to run.
SPOKE_PROGRAM = SpokeProgram(
    entry="spoke.spoke:run_spoke",
    preload=(
        "json", "asyncio", "threading", "contextlib", "io", "traceback", "base64",
        "pydantic", "jsonschema",
        "langchain_core.messages", "langchain_core.tools", "langchain_core.language_models",
        "helpers.isc.channel", "helpers.sandbox.confine", "helpers.tools.app_module", "spoke.spoke", "spoke.tools",
        "spoke.hub_model",
        "evaluation.mcp_servers",  # empty: app code kept in the repository (tool_importer.APP_PACKAGES_IN_REPO)
        # the Google apps' client stack (pure Python; imported once here instead of in every spoke)
        "httplib2", "googleapiclient.discovery", "googleapiclient.errors", "google_auth_httplib2",
        "google.oauth2.credentials", "google.auth.credentials",
    ))


@dataclass
class SpokeProcess:
    app: str
    pid: int
    pidfd: int
    channel: Channel
    # The report the spoke sent after confining itself and before importing any app code: the
    # only account of its sandbox the hub trusts (checked against what the hub asked for).
    confined: SpokeConfined | None = None
    exit: SpokeExited | None = None
    started_at: float = field(default_factory=time.monotonic)
    # How long its start took, in ms from the spawn call: "spawned" (the zygote named its pid),
    # "confined" (its report received and checked), "ready" (its app module loaded).
    start_ms: dict[str, float] = field(default_factory=dict)

    @property
    def sandbox(self) -> SandboxReport | None:
        return self.confined.sandbox if self.confined else None

    @property
    def alive(self) -> bool:
        return self.exit is None and not self.channel.closed


def describe_exit(exit: SpokeExited | None) -> str:
    if exit is None:
        return "still running or status unknown"
    if exit.signal is not None:
        known = exit.signal in signal.Signals._value2member_map_
        name = signal.Signals(exit.signal).name if known else str(exit.signal)
        reasons = {"SIGXCPU": "CPU time limit exceeded", "SIGXFSZ": "file size limit exceeded",
                   "SIGKILL": "killed", "SIGSYS": "killed by the seccomp filter",
                   "SIGSEGV": "crashed", "SIGABRT": "aborted"}
        return f"{reasons.get(name, 'terminated')} ({name})"
    return f"exited with status {exit.exit_code}"


class SpokeLauncher:
    def __init__(self, network_namespace: bool = True, user_namespaces: bool | None = None,
                 program: SpokeProgram = SPOKE_PROGRAM, pool: int = DEFAULT_POOL) -> None:
        """``user_namespaces``: for a hub that is not root, None probes whether the system allows
        them; False forces the fallback (Landlock, seccomp, rlimits only), to see what it leaves.
        ``program``: what the zygote preloads and runs in each spoke. ``pool``: how many
        children the zygote keeps forked ahead, prepared for any app (0: fork on each request)."""
        self.network_namespace = network_namespace
        self.program = program
        self.pool = pool
        self.landlock_abi = landlock.abi_version()
        self.per_app_uids = os.geteuid() == 0  # root: each app's spoke runs as a uid of its own
        # Not root: build the same view in a user namespace, where the system allows it.
        self.user_namespaces = (not self.per_app_uids and user_namespaces is not False
                                and mounts.user_namespaces_work())
        self._uid_owner: dict[int, str] = {}
        self._zygote: subprocess.Popen[bytes] | None = None
        self._ctl: socket.socket | None = None
        self._decoder = FrameDecoder()
        self._exits: dict[int, SpokeExited] = {}
        self._spawned: deque[Spawned] = deque()
        self._pending: deque[ControlMessage] = deque()
        self._confinements: dict[tuple[object, ...], Confinement] = {}
        self._serial = 0
        self._lock = threading.RLock()
        self.zygote_ready: ZygoteReady | None = None

    # --- zygote life cycle --------------------------------------------------------
    def start(self) -> SpokeLauncher:
        if self.landlock_abi == 0:
            print(LANDLOCK_WARNING, file=sys.stderr)
        if not self.per_app_uids and not self.user_namespaces:
            print(USERNS_WARNING, file=sys.stderr)
        hub_end, zygote_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        os.set_inheritable(zygote_end.fileno(), True)
        # The zygote must find its control socket at CONTROL_FD.
        self._zygote = subprocess.Popen(
            [sys.executable, "-c",
             f"import os; os.dup2({zygote_end.fileno()}, {CONTROL_FD}); "
             f"os.close({zygote_end.fileno()}) if {zygote_end.fileno()} != {CONTROL_FD} else None; "
             "from helpers.sandbox.zygote import main; main()"],
            env=zygote_environment(), cwd=str(paths.REPO_ROOT), pass_fds=(zygote_end.fileno(),),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, close_fds=True,
            start_new_session=True)  # the terminal's Ctrl-C is for the hub, not for the zygote
        zygote_end.close()
        self._ctl = hub_end
        start = ZygoteStart(preload=list(self.program.preload), preparation=self.preparation(), pool=self.pool)
        hub_end.sendall(encode_frame(start.model_dump_json().encode()))
        try:
            self.zygote_ready = self._next_control(time.monotonic() + ZYGOTE_START_TIMEOUT, ZygoteReady)
        except TimeoutError as exc:
            self.close()
            raise SandboxError(f"the zygote did not start within {ZYGOTE_START_TIMEOUT:.0f}s") from exc
        return self

    def close(self) -> None:
        if self._ctl is not None:
            self._ctl.close()  # the zygote sees EOF, kills its spokes and exits
            self._ctl = None
        if self._zygote is not None:
            try:
                self._zygote.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._zygote.kill()
                self._zygote.wait()
            self._zygote = None

    def __enter__(self) -> SpokeLauncher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def zygote_pid(self) -> int | None:
        return self._zygote.pid if self._zygote else None

    # --- spokes -------------------------------------------------------------------------
    def preparation(self) -> SpokePreparation:
        """What each spoke does before it is told its app: the same for all of this launcher's
        (``control.preparation_for`` of any confinement it makes)."""
        user = not self.per_app_uids and self.user_namespaces
        return SpokePreparation(user_namespace=user,
                                network_namespace=(self.per_app_uids or user) and self.network_namespace)

    def confinement(self, policy: SpokePolicy, app_module: str) -> Confinement:
        # Same app, same places: same confinement (computing it walks the interpreter's layout).
        key = (policy.app, str(policy.data_dir), policy.limits.model_dump_json(), policy.extra_read_only,
               policy.exceptions, policy.server_command, tuple(sorted(policy.server_env.items())),
               app_module, str(paths.data_dir()), os.path.expanduser("~"))
        if key not in self._confinements:
            self._confinements[key] = self._confinement(policy, app_module)
        return self._confinements[key]

    def _confinement(self, policy: SpokePolicy, app_module: str) -> Confinement:
        uid, gid = self.identity(policy.app) or (None, None)
        read_only = policy.read_only_paths()
        read_write = policy.read_write_paths()
        server = None
        if policy.server_command:
            server = server_process.plan(policy.server_command, policy.server_env, policy.data_dir,
                                         [*read_write, paths.data_dir()])
            # The files run for it must be in the spoke's view (read-only, like the interpreter).
            read_only += [Path(f) for f in server.executable if not any(Path(f).is_relative_to(p) for p in read_only)]
        exposed = [p for p in read_only if paths.data_dir().is_relative_to(p)]
        if exposed:
            raise SandboxError(f"the data directory {paths.data_dir()} lies under {exposed[0]}, which every "
                               "spoke may read; set SECGPT_DATA_DIR to a directory outside it")
        return Confinement(
            app=policy.app, app_module=app_module, data_dir=str(policy.data_dir),
            read_only=[str(p) for p in read_only],
            read_write=[str(p) for p in read_write],
            masked=[str(p) for p in policy.masked_paths()],
            rlimits=policy.rlimits(), uid=uid, gid=gid,
            network_namespace=self.network_namespace, user_namespace=self.user_namespaces,
            seccomp_exceptions=sorted(policy.exceptions), server=server)

    def identity(self, app: str) -> tuple[int, int] | None:
        """The (uid, gid) ``app``'s spokes run as; None when the hub is not root. Two apps never
        share one: a clash of the derived uids is refused."""
        identity = spoke_identity(app)
        if identity is None:
            return None
        owner = self._uid_owner.setdefault(identity[0], app)
        if owner != app:
            raise SandboxError(f"apps {owner!r} and {app!r} map to the same spoke uid {identity[0]}; "
                               "rename one of them")
        return identity

    def spawn(self, policy: SpokePolicy, app_module: str, profile: SpokeProfile | None = None) -> SpokeProcess:
        """Start a confined spoke for ``policy.app`` and wait until it reports ready."""
        if self._ctl is None:
            raise SandboxError("the spoke launcher is not started")
        began = time.perf_counter()
        self._prepare_data_dir(policy)
        spec = self.confinement(policy, app_module)
        hub_end, spoke_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        # Queued on the spoke's own socket, where the child reads it after the fork: the zygote
        # only ever sees a serial number.
        spoke_start.send(hub_end, ConfineRequest(confinement=spec))
        with self._lock:
            self._serial += 1
            request = SpawnRequest(serial=self._serial, entry=self.program.entry)
            frame = encode_frame(request.model_dump_json().encode())
            self._ctl.sendmsg([frame], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                         spoke_end.fileno().to_bytes(4, sys.byteorder, signed=True))])
            spoke_end.close()
            spawned = self._wait_spawned(request.serial, time.monotonic() + SPAWN_TIMEOUT)
        # A spoke that stops reading must not block the hub: sends time out (then the spoke is stopped).
        hub_end.settimeout(SEND_TIMEOUT)
        try:
            pidfd = os.pidfd_open(spawned.pid)
        except OSError as exc:  # it died (and was reaped) before we could hold it
            hub_end.close()
            raise SpokeError(f"spoke for {policy.app} exited at once ({exc.strerror})") from exc
        spoke = SpokeProcess(app=policy.app, pid=spawned.pid, pidfd=pidfd, channel=Channel(hub_end))
        spoke.start_ms["spawned"] = (time.perf_counter() - began) * 1000
        try:
            spoke.confined = self._start(hub_end, spec, profile, time.monotonic() + SPAWN_TIMEOUT,
                                         lambda phase: spoke.start_ms.setdefault(
                                             phase, (time.perf_counter() - began) * 1000))
        except (EOFError, TimeoutError, OSError, ProtocolError, SpokeError) as exc:
            self.kill(spoke)
            detail = describe_exit(self.wait_exit(spoke)) if isinstance(exc, EOFError) else str(exc)
            raise SpokeError(f"spoke for {policy.app} did not start: {detail}") from exc
        return spoke

    def _start(self, sock: socket.socket, spec: Confinement, profile: SpokeProfile | None,
               deadline: float, reached: Callable[[str], object] = lambda phase: None) -> SpokeConfined:
        """The hub's half of ``spoke_start``; returns the report the hub keeps. ``reached`` is
        told each phase done ("confined", "ready")."""
        confined = self._expect(spoke_start.recv(sock, deadline), SpokeConfined)
        if confined.app != spec.app:
            raise SpokeError(f"it reported for app {confined.app!r}, not {spec.app!r}")
        if (mismatch := spoke_start.report_mismatch(spec, confined.sandbox, self.landlock_abi)) is not None:
            raise SpokeError(f"its sandbox differs from the one decided: {mismatch}")
        reached("confined")
        spoke_start.send(sock, LoadRequest(profile=profile))
        # From here on the app's code has run in the spoke: what it says is the app's word.
        ready = self._expect(spoke_start.recv(sock, deadline), SpokeReady)
        if ready.app != spec.app:
            raise SpokeError(f"it reported ready as app {ready.app!r}, not {spec.app!r}")
        reached("ready")
        return confined

    @staticmethod
    def _expect(message: spoke_start.StartMessage, kind: type[_Start]) -> _Start:
        if isinstance(message, ErrorMessage):
            raise SpokeError(message.message)
        if not isinstance(message, kind):
            raise ProtocolError(f"sent {message.type} where {kind.model_fields['type'].default} belongs")
        return message

    def kill(self, spoke: SpokeProcess) -> None:
        self._collect_exits()  # a spoke the zygote already reaped must not be signalled
        if spoke.exit is None and spoke.pid in self._exits:
            spoke.exit = self._exits.pop(spoke.pid)
        if spoke.exit is None:
            try:
                signal.pidfd_send_signal(spoke.pidfd, signal.SIGKILL)
            except ProcessLookupError:
                pass
        spoke.channel.close()

    def wait_exit(self, spoke: SpokeProcess, timeout: float = 5.0) -> SpokeExited | None:
        """The spoke's exit status as reported by the zygote, once it has exited."""
        if spoke.exit is None:
            with self._lock:
                deadline = time.monotonic() + timeout
                while spoke.pid not in self._exits:
                    try:
                        self._pump(deadline)
                    except TimeoutError:
                        return None
                spoke.exit = self._exits.pop(spoke.pid)
            try:
                os.close(spoke.pidfd)
            except OSError:
                pass
        return spoke.exit

    def release(self, spoke: SpokeProcess) -> SpokeExited | None:
        """Stop a spoke for good and collect its status."""
        self.kill(spoke)
        return self.wait_exit(spoke)

    # --- control channel ------------------------------------------------------------------
    def _prepare_data_dir(self, policy: SpokePolicy) -> None:
        # Through directory descriptors, never following a link: the directory is the app's.
        app_dirs.prepare_app_dir(policy.data_dir, self.identity(policy.app))

    def _wait_spawned(self, serial: int, deadline: float) -> Spawned:
        while True:
            while self._spawned:
                spawned = self._spawned.popleft()
                if spawned.serial == serial:
                    return spawned
            self._pump(deadline)

    def _next_control(self, deadline: float, kind: type[_Control]) -> _Control:
        while True:
            message = self._read_control(deadline)
            if isinstance(message, kind):
                return message
            self._file(message)

    def _collect_exits(self) -> None:
        with self._lock:
            if self._ctl is None:
                return
            while True:
                try:
                    self._pump(time.monotonic())
                except TimeoutError:
                    return

    def _pump(self, deadline: float) -> None:
        self._file(self._read_control(deadline))

    def _file(self, message: ControlMessage) -> None:
        if isinstance(message, SpokeExited):
            self._exits[message.pid] = message
        elif isinstance(message, Spawned):
            self._spawned.append(message)

    def _read_control(self, deadline: float) -> ControlMessage:
        ctl = self._ctl
        if ctl is None:
            raise SandboxError("the spoke launcher is not started")
        while not self._pending:
            remaining = deadline - time.monotonic()
            if not select.select([ctl], [], [], max(remaining, 0.0))[0]:
                raise TimeoutError("the zygote did not answer in time")
            data = ctl.recv(65536)
            if not data:
                code = self._zygote.poll() if self._zygote else None
                raise SandboxError(f"the zygote exited (status {code}); see the messages above")
            for frame in self._decoder.feed(data):
                if isinstance(frame, FrameTooLarge):  # the zygote is trusted: this is a bug, said plainly
                    raise SandboxError(f"the zygote sent an oversized control frame ({frame.size} bytes)")
                self._pending.append(CONTROL_ADAPTER.validate_json(frame))
        return self._pending.popleft()
