"""Runs in: zygote, spoke (in a spoke before any app code; the filter is then irreversible).

The seccomp-bpf filter a spoke loads last, just before app code runs.

An allow-list built from ``policy``: calls in ``ALLOWED_SYSCALLS`` pass, calls in
``CONDITIONAL_SYSCALLS`` pass only in the harmless form encoded below, calls in
``DENIED_SYSCALLS`` fail with EPERM, and so does everything else, including
whatever a newer kernel adds; the few calls glibc probes and falls back from
(``ENOSYS_SYSCALLS``) say ENOSYS instead. Nothing is killed, so the hub gets a clear
error; only a foreign-architecture call (i386/x32 ABI tricks) kills the process.
TSYNC puts every thread of the spoke under the same filter.

Building the filter is the slow part (a rule at a time through libseccomp, then its
compilation to BPF); ``compile_filter`` does both and returns the program, which
``install`` hands to the kernel with ``seccomp(SECCOMP_SET_MODE_FILTER, TSYNC)``. The
filter differs from one spoke to the next only by the spoke's pid (signals to itself only),
so the zygote compiles it once as a ``Template`` (the default policy, no exceptions) and a
spoke forked ahead writes its pid into its copy while it waits for its app
(``confine.prepare``); an app with exceptions gets a filter compiled for it; ``load``
compiles and installs at once.

Every comparison on a 32-bit argument masks the upper 32 bits (``_arg32``): the
kernel ignores them, so a plain 64-bit comparison would let ``value | 1 << 32``
slip past a rule that names ``value``.
"""

from __future__ import annotations

import ctypes
import errno
import os
import socket
import struct
from collections.abc import Iterable

import pyseccomp as sc

from helpers.sandbox import policy
from helpers.utilities.errors import SandboxError

LOW32 = 0xFFFFFFFF
# Calls newer than this libseccomp's tables. Numbers from 424 on are the same on every
# architecture (the kernel's unified syscall table), so they are safe to name by number.
UNIFIED_NUMBERS = {"statmount": 457, "listmount": 458, "setxattrat": 463, "removexattrat": 466}
SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, SECCOMP_FILTER_FLAG_NEW_LISTENER = 1, 1, 8
PR_SET_NO_NEW_PRIVS = 38
INSTRUCTION = struct.Struct("=HBBI")  # struct sock_filter: code, jt, jf, k
BPF_INSTRUCTION = INSTRUCTION.size
# Two made-up pids, above any real one (pid_max is at most 2**22), to find where a filter uses its
# pid. Every one of their 32 bits differs, so an instruction that uses any bits of the pid differs
# between the two programs (two probes alike in some bits would hide an instruction using only those).
PID_PROBES = (0xAAAAAAAA, 0x55555555)
_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def _arg32(index: int, value: int) -> sc.Arg:
    return sc.Arg(index, sc.MASKED_EQ, LOW32, value & LOW32)


def build_filter(own_pid: int, exceptions: Iterable[str] = (), supervised: bool = False) -> sc.SyscallFilter:
    """The spoke's filter for ``own_pid``; ``supervised`` (an MCP command server's filter): the
    calls in ``policy.SUPERVISED_SYSCALLS`` go to the supervisor that holds the filter's
    listener (``install(..., listener=True)``), which lets one through and then closes it."""
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
    if supervised:
        for name in policy.SUPERVISED_SYSCALLS:
            _add(f, sc.NOTIFY, name)

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


class Program:
    """A compiled filter, ready for the kernel (the ``sock_fprog`` built now, so that loading it
    later is one system call)."""

    def __init__(self, code: bytes) -> None:
        if not code or len(code) % BPF_INSTRUCTION:
            raise SandboxError(f"seccomp filter compiled to {len(code)} bytes, not a BPF program")
        self.code = code
        self._buffer = ctypes.create_string_buffer(code, len(code))
        self.fprog = _SockFprog(len(code) // BPF_INSTRUCTION, ctypes.cast(self._buffer, ctypes.c_void_p))
        self.syscall = ctypes.c_long(syscall_number("seccomp"))


def compile_filter(own_pid: int, exceptions: Iterable[str] = (), supervised: bool = False) -> Program:
    """The BPF program of ``build_filter(own_pid, exceptions, supervised)``, as libseccomp would load it."""
    built = build_filter(own_pid, exceptions, supervised=True) if supervised else build_filter(own_pid, exceptions)
    fd = os.memfd_create("seccomp-bpf", os.MFD_CLOEXEC)
    try:
        with open(fd, "rb", closefd=False) as sink:
            built.export_bpf(sink)
        code = os.pread(fd, os.fstat(fd).st_size, 0)
    except OSError as exc:
        raise SandboxError(f"seccomp filter could not be compiled: {exc}") from exc
    finally:
        os.close(fd)
    return Program(code)


class Template:
    """The filter for ``exceptions``, compiled once for any pid: the program compiled for a
    made-up pid, and the instructions that hold it (found by compiling for a second one: they
    are the only instructions that differ, only in their constant). ``for_pid`` writes a real
    pid there; the result is the program ``compile_filter`` would give for that pid, which is
    checked once, for this process's pid, before the template is used: a filter that uses its
    pid otherwise (a rule only for real pids, say) raises SandboxError, and each spoke then
    compiles its own."""

    def __init__(self, exceptions: Iterable[str] = ()) -> None:
        self.exceptions = frozenset(exceptions)
        first, second = (compile_filter(pid, self.exceptions).code for pid in PID_PROBES)
        if len(first) != len(second):
            raise SandboxError("seccomp: the filter's shape depends on the pid; no template")
        self.slots: list[int] = []
        for offset in range(0, len(first), BPF_INSTRUCTION):
            a, b = INSTRUCTION.unpack_from(first, offset), INSTRUCTION.unpack_from(second, offset)
            if a == b:
                continue
            if a[:3] != b[:3] or (a[3], b[3]) != PID_PROBES:
                raise SandboxError(f"seccomp: instruction {offset // BPF_INSTRUCTION} differs beyond the pid")
            self.slots.append(offset)
        if not self.slots:
            raise SandboxError("seccomp: the filter holds no pid; no template")
        self.code = first
        own = os.getpid()
        if self.for_pid(own).code != compile_filter(own, self.exceptions).code:
            raise SandboxError("seccomp: the template with a real pid written in is not the filter "
                               "compiled for that pid; no template")

    def for_pid(self, pid: int) -> Program:
        code = bytearray(self.code)
        for offset in self.slots:
            INSTRUCTION.pack_into(code, offset, *INSTRUCTION.unpack_from(code, offset)[:3], pid & LOW32)
        return Program(bytes(code))


def install(program: Program, listener: bool = False) -> int | None:
    """Load a compiled filter into this process and every thread of it (TSYNC). Irreversible.
    ``listener``: for a single-threaded process only (the kernel refuses TSYNC with it), return
    the filter's user-notification listener, an fd (close-on-exec) on which a supervisor answers
    the calls the filter sends it (a ``supervised`` filter: ``build_filter``)."""
    if _libc.prctl(ctypes.c_int(PR_SET_NO_NEW_PRIVS), ctypes.c_ulong(1), 0, 0, 0) != 0:
        raise SandboxError(f"prctl(PR_SET_NO_NEW_PRIVS) failed: {os.strerror(ctypes.get_errno())}")
    flags = SECCOMP_FILTER_FLAG_NEW_LISTENER if listener else SECCOMP_FILTER_FLAG_TSYNC
    result = _libc.syscall(program.syscall, ctypes.c_uint(SECCOMP_SET_MODE_FILTER),
                           ctypes.c_uint(flags), ctypes.byref(program.fprog))
    if result < 0:
        raise SandboxError(f"seccomp filter could not be loaded: {os.strerror(ctypes.get_errno())}")
    if listener:
        return int(result)
    if result > 0:  # TSYNC names the thread it could not bring under the filter
        raise SandboxError(f"seccomp filter could not be applied to thread {result}")
    return None


def load(exceptions: Iterable[str] = (), program: Program | None = None) -> None:
    """Load the filter into this process (all threads): ``program`` if given (compiled for this
    process with these exceptions), else one compiled now. Irreversible."""
    install(program if program is not None else compile_filter(os.getpid(), exceptions))
