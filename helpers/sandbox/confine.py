"""Runs in: zygote, spoke (forked by the zygote, before any app code is imported).

Confine the current process (a freshly forked spoke) by a ``Confinement``.

In two parts. ``prepare`` does what is the same for every app of the launcher
(``SpokePreparation``): the handle the namespaces are measured through, the user, network
and IPC namespaces, the default seccomp program compiled for this pid. The zygote runs it in
children forked ahead of time, before any app is named. ``confine`` does the rest once the
hub has named the app, and first checks that the preparation is the one its confinement
implies (a spoke prepared otherwise refuses). Nothing app-specific is decided in ``prepare``.

Order matters: the mount view needs root (or a user namespace of its own);
rlimits are set while raising is still possible for nobody else; the identity is dropped before Landlock and seccomp
(which forbid changing it); an app's MCP command server is forked then, the last moment a
process can be (``server_process``: it inherits the view, limits and identity, and applies its own
Landlock and seccomp); seccomp comes last because it forbids the calls
the earlier steps make. Must run before any app code is imported.

The report it returns is measured once every layer is in place, not copied from the
request (but for one field, below): seccomp's mode as the kernel reports it, each namespace
compared with the one the spoke was forked in (the zygote's), Landlock's ABI as the restrict
call enforced it, the identity and limits as the kernel now holds them. A layer that was skipped shows in the
report, and the hub refuses the spoke (``spoke_start.report_mismatch``). Two limits: the
seccomp exceptions are copied, the ones asked for, as the filter was built from them; and
PR_GET_SECCOMP says a filter is in place, not whose, so under a host that already filters
every process (a container's default profile) a skipped filter would not show.
"""

from __future__ import annotations

import ctypes
import os
import resource
from dataclasses import dataclass

from helpers.isc.control import Confinement, SpokePreparation, preparation_for
from helpers.isc.messages import SandboxReport, ServerReport
from helpers.sandbox import landlock, mounts, seccomp, server_process
from helpers.sandbox.policy import CPU_HARD_GRACE_S, SPOKE_USER_NPROC
from helpers.utilities.errors import SandboxError

PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_GET_SECCOMP, PR_SET_NO_NEW_PRIVS = 1, 4, 21, 38
SECCOMP_MODE_FILTER = 2
NAMESPACES = ("mnt", "net", "user")
_libc = ctypes.CDLL(None, use_errno=True)


def _prctl(option: int, value: int) -> None:
    if _libc.prctl(ctypes.c_int(option), ctypes.c_ulong(value), 0, 0, 0) != 0:
        raise SandboxError(f"prctl({option}) failed: {os.strerror(ctypes.get_errno())}")


def seccomp_mode() -> int:
    """The calling thread's seccomp mode as the kernel reports it: 0 none, 2 a filter."""
    mode = int(_libc.prctl(ctypes.c_int(PR_GET_SECCOMP), ctypes.c_ulong(0), 0, 0, 0))
    if mode < 0:
        raise SandboxError(f"prctl(PR_GET_SECCOMP) failed: {os.strerror(ctypes.get_errno())}")
    return mode


class Namespaces:
    """Which of this process's namespaces (``NAMESPACES``) differ from the ones it was in when
    this was made. Made first thing after the fork, that is the parent's: a fork keeps them.

    The handle on /proc/self/ns is opened while /proc is still in view; the mount view covers
    /proc later, but a name looked up under the handle still resolves to the namespace the
    process is in at the time of the look-up. Namespaces are compared by their nsfs inode,
    the same whichever user namespace looks."""

    def __init__(self) -> None:
        self._dir = os.open("/proc/self/ns", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        self.started = self._now()

    def rebase(self) -> None:
        """Look at this process's own namespaces from now on. A child forked once /proc is covered
        holds its parent's handle, to the parent's /proc/PID/ns (which a process not its parent's
        tracer may not read); up from there is the same procfs, whose ``self`` is the child."""
        own = os.open("../../self/ns", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=self._dir)
        os.close(self._dir)
        self._dir = own

    def _now(self) -> dict[str, tuple[int, int]]:
        found = {}
        for name in NAMESPACES:
            st = os.stat(name, dir_fd=self._dir)
            found[name] = (st.st_dev, st.st_ino)
        return found

    def changed(self) -> set[str]:
        now = self._now()
        return {name for name in NAMESPACES if now[name] != self.started[name]}

    def close(self) -> None:
        os.close(self._dir)  # app code must find no handle on /proc


@dataclass
class Prepared:
    """A spoke's app-independent start, done (``prepare``); ``error``: what failed, reported
    by ``confine`` once the app is named (a child waiting in the pool does not die of it)."""

    preparation: SpokePreparation
    pid: int
    namespaces: Namespaces | None = None
    program: seccomp.Program | None = None  # the filter without exceptions, compiled for ``pid``
    error: str | None = None


def prepare(preparation: SpokePreparation, template: seccomp.Template | None = None) -> Prepared:
    """The app-independent steps, in ``confine``'s order; never raises (see ``Prepared.error``).
    ``template``: the default filter compiled once by the zygote (None: compile it here)."""
    prepared = Prepared(preparation=preparation, pid=os.getpid())
    try:
        prepared.namespaces = Namespaces()  # first: measured against the namespaces forked in
        if preparation.user_namespace:
            # Hub not root: the same view and namespaces, built as root of a new user namespace
            # mapped to the user's own uid; its capabilities are dropped as soon as the view stands.
            mounts.enter_user_namespace()
        if preparation.network_namespace:
            mounts.unshare(mounts.CLONE_NEWNET | mounts.CLONE_NEWIPC)
        if template is not None and not template.exceptions:
            prepared.program = template.for_pid(prepared.pid)
        else:
            prepared.program = seccomp.compile_filter(prepared.pid)
    except Exception as exc:  # noqa: BLE001 - told to the hub once it names the app, never run past
        prepared.error = f"{type(exc).__name__}: {exc}"
    return prepared


def confine(spec: Confinement, parent_pid: int, prepared: Prepared | None = None) -> SandboxReport:
    """Apply ``spec`` to this process, after ``prepared`` (this process's own ``prepare``; None:
    prepare now). Returns the report measured once every layer is in place."""
    if prepared is None:
        prepared = prepare(preparation_for(spec))
    try:
        if prepared.error is not None:
            raise SandboxError(f"the spoke's preparation failed: {prepared.error}")
        if prepared.pid != os.getpid() or prepared.namespaces is None:
            raise SandboxError("the spoke's preparation was made by another process")
        if prepared.preparation != preparation_for(spec):
            raise SandboxError(f"the spoke was prepared for {prepared.preparation!r}, "
                               f"its confinement asks for {preparation_for(spec)!r}")
        program = prepared.program if not spec.seccomp_exceptions else None
        abi, server = _apply(spec, parent_pid, program, prepared.namespaces)
        changed = prepared.namespaces.changed()  # after seccomp: what the app's code will run in
    finally:
        if prepared.namespaces is not None:
            prepared.namespaces.close()
    return SandboxReport(
        uid=os.getuid(), gid=os.getgid(),
        rlimits={name: resource.getrlimit(getattr(resource, name))[0] for name in spec.rlimits},
        seccomp=seccomp_mode() == SECCOMP_MODE_FILTER, landlock_abi=abi,
        mount_namespace="mnt" in changed, network_namespace="net" in changed, user_namespace="user" in changed,
        seccomp_exceptions=list(spec.seccomp_exceptions), server=server)


def _apply(spec: Confinement, parent_pid: int, program: seccomp.Program | None,
           namespaces: Namespaces) -> tuple[int, ServerReport | None]:
    """Every app-specific layer, in order; returns the Landlock ABI enforced (0: none) and the
    report of the app's command server, started here if it has one."""
    if spec.uid is not None:
        mounts.build_view(spec.read_only, spec.read_write, spec.masked, spec.uid, spec.gid or spec.uid)
    elif spec.user_namespace:
        mounts.build_view(spec.read_only, spec.read_write, spec.masked, os.getuid(), os.getgid())
        mounts.drop_capabilities()

    for name, value in spec.rlimits.items():
        # CPU: SIGXCPU at the soft limit (a clear reason), SIGKILL a moment later if ignored.
        hard = value + CPU_HARD_GRACE_S if name == "RLIMIT_CPU" else value
        resource.setrlimit(getattr(resource, name), (value, hard))

    if spec.uid is not None:
        resource.setrlimit(resource.RLIMIT_NPROC, (SPOKE_USER_NPROC, SPOKE_USER_NPROC))
        gid = spec.gid if spec.gid is not None else spec.uid
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        os.setresuid(spec.uid, spec.uid, spec.uid)
        if os.getresuid() != (spec.uid,) * 3 or 0 in os.getgroups():
            raise SandboxError("could not drop to the spoke identity")

    # A credential change clears the parent-death signal: set it afterwards, then
    # make sure the parent did not already die in between.
    _prctl(PR_SET_PDEATHSIG, 9)
    if os.getppid() != parent_pid:
        os._exit(1)
    _prctl(PR_SET_DUMPABLE, 0)
    _prctl(PR_SET_NO_NEW_PRIVS, 1)
    os.chdir(spec.data_dir)

    # Its own process, forked while forking is still possible; it confines itself (server_process).
    server = server_process.start(spec, namespaces) if spec.server is not None else None
    # No execute right anywhere: seccomp denies execve already; this is the second lock.
    abi = landlock.restrict(spec.read_only, spec.read_write, execute=())  # its result: the ABI the kernel enforces
    seccomp.load(spec.seccomp_exceptions, program)
    return abi, server
