"""Runs in: zygote, spoke (in a spoke before any app code; the filter is then irreversible).

The seccomp-bpf filter a spoke loads last, just before app code runs.

An allow-list built from ``policy``: calls in ``ALLOWED_SYSCALLS`` pass, calls in
``CONDITIONAL_SYSCALLS`` pass only in the harmless form encoded below, calls in
``DENIED_SYSCALLS`` fail with EPERM, and so does everything else, including
whatever a newer kernel adds; the few calls glibc probes and falls back from
(``ENOSYS_SYSCALLS``) say ENOSYS instead. Nothing is killed, so the hub gets a clear
error; only a foreign-architecture call (i386/x32 ABI tricks) kills the process.
TSYNC puts every thread of the spoke under the same filter.

Every comparison on a 32-bit argument masks the upper 32 bits (``_arg32``): the
kernel ignores them, so a plain 64-bit comparison would let ``value | 1 << 32``
slip past a rule that names ``value``.
"""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Iterable

import pyseccomp as sc

from helpers.sandbox import policy
from helpers.utilities.errors import SandboxError

LOW32 = 0xFFFFFFFF
# Calls newer than this libseccomp's tables. Numbers from 424 on are the same on every
# architecture (the kernel's unified syscall table), so they are safe to name by number.
UNIFIED_NUMBERS = {"statmount": 457, "listmount": 458, "setxattrat": 463, "removexattrat": 466}


def _arg32(index: int, value: int) -> sc.Arg:
    return sc.Arg(index, sc.MASKED_EQ, LOW32, value & LOW32)


def build_filter(own_pid: int, exceptions: Iterable[str] = ()) -> sc.SyscallFilter:
    exceptions = frozenset(exceptions)
    unknown = exceptions - set(policy.POLICY_EXCEPTIONS)
    if unknown:
        raise SandboxError(f"unknown sandbox exception(s) {sorted(unknown)}; known: {sorted(policy.POLICY_EXCEPTIONS)}")
    allow = sc.ALLOW
    f = sc.SyscallFilter(defaction=sc.ERRNO(policy.DEFAULT_ERRNO))
    f.set_attr(sc.Attr.ACT_BADARCH, sc.KILL_PROCESS)
    f.set_attr(sc.Attr.CTL_TSYNC, 1)
    f.set_attr(sc.Attr.CTL_NNP, 1)
    for name in policy.ALLOWED_SYSCALLS:
        _add(f, allow, name)
    for name in policy.ENOSYS_SYSCALLS:
        _add(f, sc.ERRNO(errno.ENOSYS), name)
    # DENIED_SYSCALLS need no rule: the default denies them (libseccomp refuses a rule that
    # repeats the default action); the tests check each one.
    if "file_locks" in exceptions:
        _add(f, allow, "flock")

    # Threads yes, processes no (clone's flags are an unsigned long: all 64 bits count).
    _add(f, allow, "clone", sc.Arg(0, sc.MASKED_EQ, policy.CLONE_THREAD, policy.CLONE_THREAD))
    # asyncio and friends need socketpair(AF_UNIX); nothing else.
    _add(f, allow, "socketpair", _arg32(0, socket.AF_UNIX))
    # Its own limits, read only.
    _add(f, allow, "prlimit64", _arg32(0, 0), sc.Arg(2, sc.EQ, 0))
    # Signals only to itself and its own threads.
    for name in ("kill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo"):
        _add(f, allow, name, _arg32(0, own_pid))
    # Process-wide state of itself only: pid 0 means "the caller" to each of these.
    for name in ("getpgid", "getsid", "sched_getaffinity", "sched_setaffinity", "sched_getparam",
                 "sched_setparam", "sched_getscheduler", "sched_setscheduler", "sched_getattr",
                 "sched_setattr"):
        _add(f, allow, name, _arg32(0, 0))
    for name in ("getpriority", "setpriority"):
        _add(f, allow, name, _arg32(0, policy.PRIO_PROCESS), _arg32(1, 0))
    for name in ("ioprio_get", "ioprio_set"):
        _add(f, allow, name, _arg32(0, policy.IOPRIO_WHO_PROCESS), _arg32(1, 0))
    _add(f, allow, "utimensat", sc.Arg(1, sc.EQ, 0))
    for value in policy.ARCH_PRCTL_ALLOWED.values():
        _add(f, allow, "arch_prctl", _arg32(0, value))
    for value in policy.PRCTL_ALLOWED.values():
        _add(f, allow, "prctl", _arg32(0, value))
    for value in policy.IOCTL_ALLOWED.values():
        _add(f, allow, "ioctl", _arg32(1, value))
    fcntl_allowed = dict(policy.FCNTL_ALLOWED)
    if "file_locks" in exceptions:
        fcntl_allowed.update(policy.FCNTL_LOCKS)
    for value in fcntl_allowed.values():
        _add(f, allow, "fcntl", _arg32(1, value))
    return f


def syscall_number(name: str) -> int:
    """The number of ``name`` on this architecture, or -1 if neither libseccomp nor the unified
    table knows it."""
    number = sc.resolve_syscall(sc.system_arch(), name)
    return number if number >= 0 else UNIFIED_NUMBERS.get(name, -1)


def _add(f: sc.SyscallFilter, action: int, name: str, *args: sc.Arg) -> None:
    number = syscall_number(name)
    if number < 0:
        raise SandboxError(f"seccomp: system call {name!r} is unknown on this architecture")
    try:
        f.add_rule(action, number, *args)
    except (RuntimeError, OSError, ValueError) as exc:
        raise SandboxError(f"seccomp rule for {name!r} could not be added: {exc}") from exc


def load(exceptions: Iterable[str] = ()) -> None:
    """Load the filter into this process (all threads). Irreversible."""
    try:
        build_filter(os.getpid(), exceptions).load()
    except OSError as exc:
        raise SandboxError(f"seccomp filter could not be loaded: {exc}") from exc
