"""The spoke's private view of the filesystem (root only: a new mount namespace).

Directories that hold secrets (the data directory, the hub user's home) are
covered with an empty read-only tmpfs; only the paths the spoke needs beneath
them (the interpreter, its own data directory) are bound back, read-only except
its data directory. A secret that is not in the view cannot be read by any bug
in the other layers. The same trick makes the interpreter reachable when it
lives under a directory the unprivileged spoke user cannot traverse (/root).
"""

from __future__ import annotations

import ctypes
import os
import stat
from collections.abc import Iterable
from pathlib import Path

from helpers.utilities.errors import SandboxError

CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000
CLONE_NEWIPC = 0x08000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18

PROC = Path("/proc")
_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        raise SandboxError(f"{what} failed: {os.strerror(ctypes.get_errno())}")


def unshare(flags: int) -> None:
    _check(_libc.unshare(ctypes.c_int(flags)), "unshare")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    enc = lambda s: s.encode() if s is not None else None  # noqa: E731
    _check(_libc.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)),
           f"mount {target}")


def traversable(path: Path, uid: int, gid: int) -> bool:
    st = path.stat()
    if st.st_uid == uid:
        return bool(st.st_mode & stat.S_IXUSR)
    if st.st_gid == gid:
        return bool(st.st_mode & stat.S_IXGRP)
    return bool(st.st_mode & stat.S_IXOTH)


def blocking_ancestor(path: Path, uid: int, gid: int) -> Path | None:
    """The highest directory above ``path`` that ``uid`` cannot pass through."""
    for parent in reversed(path.parents):
        if not traversable(parent, uid, gid):
            return parent
    return None


def build_view(read_only: Iterable[Path], read_write: Iterable[Path], masked: Iterable[Path],
               uid: int, gid: int) -> None:
    """Enter a private mount namespace and shape it (see the module docstring)."""
    read_only, read_write = [Path(p) for p in read_only], [Path(p) for p in read_write]
    needed = [p for p in [*read_only, *read_write] if p.exists()]
    covers = {Path(m) for m in masked if Path(m).is_dir()}
    covers |= {a for p in needed if (a := blocking_ancestor(p, uid, gid)) is not None}
    # Keep only outermost covers; a cover inside another is handled by the outer one.
    covers = {c for c in covers if not any(c != o and c.is_relative_to(o) for o in covers)}

    # /proc goes last: the binds below name their sources through /proc/self/fd.
    proc_last = sorted(covers, key=lambda c: (c == PROC, str(c)))
    unshare(CLONE_NEWNS)
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    for cover in proc_last:
        beneath = [p for p in needed if p.is_relative_to(cover) and p != cover]
        beneath = [p for p in beneath if not any(p != q and p.is_relative_to(q) for q in beneath)]
        handles = {p: os.open(p, os.O_PATH | os.O_CLOEXEC) for p in beneath}
        try:
            _mount("tmpfs", str(cover), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=64k,mode=0755")
            for p, fd in handles.items():
                _make_mountpoint(cover, p, is_dir=stat.S_ISDIR(os.fstat(fd).st_mode))
                _mount(f"/proc/self/fd/{fd}", str(p), None, MS_BIND | MS_REC)
                if p not in read_write:
                    _mount(None, str(p), None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
            _mount(None, str(cover), None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)
        finally:
            for fd in handles.values():
                os.close(fd)


def _make_mountpoint(cover: Path, target: Path, is_dir: bool) -> None:
    for parent in reversed(target.parents):
        if parent.is_relative_to(cover) and parent != cover and not parent.exists():
            parent.mkdir(mode=0o755)
    if is_dir:
        target.mkdir(mode=0o755, exist_ok=True)
    else:
        target.touch(mode=0o644, exist_ok=True)
