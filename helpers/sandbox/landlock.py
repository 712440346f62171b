"""Runs in: hub, zygote, spoke.

Landlock through raw system calls (ctypes): filesystem, TCP and scope rules.

Applied by a spoke to itself; once restricted, a process and its threads can
only ever be restricted further. ``abi_version()`` returns 0 when the kernel
lacks Landlock: the caller must say so loudly, not pretend the layer exists.
"""

from __future__ import annotations

import ctypes
import os
import platform
from collections.abc import Iterable
from pathlib import Path

from helpers.utilities.errors import SandboxError

_SYSCALLS = {  # landlock_create_ruleset, landlock_add_rule, landlock_restrict_self
    "x86_64": (444, 445, 446),
    "aarch64": (444, 445, 446),
}

# Filesystem access rights, by the ABI that introduced them.
EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
REMOVE_DIR, REMOVE_FILE, MAKE_CHAR, MAKE_DIR = 1 << 4, 1 << 5, 1 << 6, 1 << 7
MAKE_REG, MAKE_SOCK, MAKE_FIFO, MAKE_BLOCK, MAKE_SYM = 1 << 8, 1 << 9, 1 << 10, 1 << 11, 1 << 12
REFER, TRUNCATE, IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
FS_BY_ABI = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 4: (1 << 15) - 1, 5: (1 << 16) - 1}
FILE_ONLY = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV

NET_BIND_TCP, NET_CONNECT_TCP = 1 << 0, 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1

READ_ONLY = EXECUTE | READ_FILE | READ_DIR
READ_WRITE = (READ_ONLY | WRITE_FILE | REMOVE_DIR | REMOVE_FILE | MAKE_DIR | MAKE_REG
              | MAKE_SYM | TRUNCATE | REFER)

_CREATE_RULESET_VERSION = 1 << 0
_RULE_PATH_BENEATH = 1


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64),
                ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def _numbers() -> tuple[int, int, int] | None:
    return _SYSCALLS.get(platform.machine())


def abi_version() -> int:
    """The kernel's Landlock ABI, or 0 if Landlock is missing or disabled."""
    numbers = _numbers()
    if numbers is None:
        return 0
    abi = _libc.syscall(numbers[0], None, ctypes.c_size_t(0), ctypes.c_uint32(_CREATE_RULESET_VERSION))
    return max(int(abi), 0)


def _handled_fs(abi: int) -> int:
    return FS_BY_ABI.get(abi, FS_BY_ABI[5])


def restrict(read_only: Iterable[str | Path], read_write: Iterable[str | Path],
             execute: Iterable[str | Path] | None = None) -> int:
    """Confine this process to the given paths; deny all TCP; scope signals and
    abstract Unix sockets to itself. Returns the ABI used (0: not applied).

    ``execute``: None keeps the execute right wherever reading is allowed; a list gives it to
    those files only (read and execute), and to nothing under ``read_only`` or ``read_write``.
    The kernel checks it when it opens a file to run it: the program named to execve, its ELF
    interpreter, a script's ``#!`` interpreter. Shared libraries are mapped, not executed: they
    need only the read right."""
    numbers = _numbers()
    abi = abi_version()
    if numbers is None or abi == 0:
        return 0
    create, add_rule, restrict_self = numbers
    handled_fs = _handled_fs(abi)
    attr = _RulesetAttr(handled_access_fs=handled_fs,
                        handled_access_net=(NET_BIND_TCP | NET_CONNECT_TCP) if abi >= 4 else 0,
                        scoped=(SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL) if abi >= 6 else 0)
    size = 8 if abi < 4 else 16 if abi < 6 else 24
    ruleset = _libc.syscall(create, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if ruleset < 0:
        raise SandboxError(f"landlock_create_ruleset failed: {os.strerror(ctypes.get_errno())}")
    rules: list[tuple[Iterable[str | Path], int]] = [(read_only, READ_ONLY), (read_write, READ_WRITE)]
    if execute is not None:
        rules = [(paths, access & ~EXECUTE) for paths, access in rules] + [(execute, READ_FILE | EXECUTE)]
    try:
        for paths, access in rules:
            for path in paths:
                _add_path(add_rule, ruleset, Path(path), access & handled_fs)
        if _libc.syscall(restrict_self, ctypes.c_int(ruleset), ctypes.c_uint32(0)) != 0:
            raise SandboxError(f"landlock_restrict_self failed: {os.strerror(ctypes.get_errno())}")
    finally:
        os.close(ruleset)
    return abi


def _add_path(add_rule: int, ruleset: int, path: Path, access: int) -> None:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except FileNotFoundError:
        return  # an optional path (e.g. /lib64) that this system lacks
    try:
        if not path.is_dir():
            access &= FILE_ONLY
        rule = _PathBeneathAttr(allowed_access=access, parent_fd=fd)
        if _libc.syscall(add_rule, ctypes.c_int(ruleset), ctypes.c_int(_RULE_PATH_BENEATH),
                         ctypes.byref(rule), ctypes.c_uint32(0)) != 0:
            raise SandboxError(f"landlock_add_rule({path}) failed: {os.strerror(ctypes.get_errno())}")
    finally:
        os.close(fd)
