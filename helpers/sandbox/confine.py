"""Confine the current process (a freshly forked spoke) by a ``Confinement``.

Runs in: spoke (forked by the zygote, before any app code is imported).

Order matters: the mount view needs root (or a user namespace of its own);
rlimits are set while raising is still possible for nobody else; the identity is dropped before Landlock and seccomp
(which forbid changing it); seccomp comes last because it forbids the calls
the earlier steps make. Must run before any app code is imported.
"""

from __future__ import annotations

import ctypes
import os
import resource

from helpers.isc.control import Confinement
from helpers.isc.messages import SandboxReport
from helpers.sandbox import landlock, mounts, seccomp
from helpers.sandbox.policy import CPU_HARD_GRACE_S, SPOKE_USER_NPROC
from helpers.utilities.errors import SandboxError

PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_NO_NEW_PRIVS = 1, 4, 38
_libc = ctypes.CDLL(None, use_errno=True)


def _prctl(option: int, value: int) -> None:
    if _libc.prctl(ctypes.c_int(option), ctypes.c_ulong(value), 0, 0, 0) != 0:
        raise SandboxError(f"prctl({option}) failed: {os.strerror(ctypes.get_errno())}")


def confine(spec: Confinement, parent_pid: int) -> SandboxReport:
    netns = userns = False
    if spec.uid is not None:
        if spec.network_namespace:
            mounts.unshare(mounts.CLONE_NEWNET | mounts.CLONE_NEWIPC)
            netns = True
        mounts.build_view(spec.read_only, spec.read_write, spec.masked, spec.uid, spec.gid or spec.uid)
    elif spec.user_namespace:
        # Hub not root: the same view and namespaces, built as root of a new user namespace
        # mapped to the user's own uid; its capabilities are dropped as soon as the view stands.
        mounts.enter_user_namespace()
        userns = True
        if spec.network_namespace:
            mounts.unshare(mounts.CLONE_NEWNET | mounts.CLONE_NEWIPC)
            netns = True
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

    abi = landlock.restrict(spec.read_only, spec.read_write)
    seccomp.load(spec.seccomp_exceptions)
    return SandboxReport(
        uid=os.getuid(), gid=os.getgid(),
        rlimits={name: resource.getrlimit(getattr(resource, name))[0] for name in spec.rlimits},
        seccomp=True, landlock_abi=abi,
        mount_namespace=spec.uid is not None or userns, network_namespace=netns, user_namespace=userns,
        seccomp_exceptions=list(spec.seccomp_exceptions))
