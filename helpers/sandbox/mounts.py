"""Runs in: hub, zygote, spoke (a spoke, before any app code; a throwaway child of the hub probing user namespaces).

The spoke's private view of the filesystem: a new mount namespace, and for a hub that
is not root, the user namespace that makes building one possible without privilege.

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
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
CLONE_NEWIPC = 0x08000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MS_NOATIME, MS_NODIRATIME, MS_RELATIME = 1024, 2048, 1 << 21
# statvfs flags of a mount that a user namespace may not drop when it remounts (the kernel locks
# them), mapped to the mount flags that keep them.
_LOCKED = {os.ST_NOSUID: MS_NOSUID, os.ST_NODEV: MS_NODEV, os.ST_NOEXEC: MS_NOEXEC,
           os.ST_NOATIME: MS_NOATIME, os.ST_NODIRATIME: MS_NODIRATIME, os.ST_RELATIME: MS_RELATIME}
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
PR_SET_DUMPABLE = 4

PROC = Path("/proc")
_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        raise SandboxError(f"{what} failed: {os.strerror(ctypes.get_errno())}")


def unshare(flags: int) -> None:
    _check(_libc.unshare(ctypes.c_int(flags)), "unshare")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    _check(_libc.mount(_encode(source), _encode(target), _encode(fstype), ctypes.c_ulong(flags), _encode(data)),
           f"mount {target}")


def _encode(text: str | None) -> bytes | None:
    """A C string argument (None: a null pointer)."""
    return text.encode() if text is not None else None


def traversable(path: str, uid: int, gid: int) -> bool:
    st = os.stat(path)
    if st.st_uid == uid:
        return bool(st.st_mode & stat.S_IXUSR)
    if st.st_gid == gid:
        return bool(st.st_mode & stat.S_IXGRP)
    return bool(st.st_mode & stat.S_IXOTH)


def _ancestors(path: str) -> list[str]:
    """``path``'s proper ancestors, outermost first (``/a/b/c``: ``/``, ``/a``, ``/a/b``)."""
    if path == "/":
        return []
    parts = path.split("/")[1:-1]
    return ["/", *("/" + "/".join(parts[: i + 1]) for i in range(len(parts)))]


def _below(path: str, root: str) -> bool:
    """Whether ``path`` lies strictly below ``root`` (both normalized, absolute)."""
    return path != root and (root == "/" or path.startswith(root + "/"))


def blocking_ancestor(path: str, uid: int, gid: int, seen: dict[str, bool] | None = None) -> str | None:
    """The highest directory above ``path`` that ``uid`` cannot pass through (``seen``: answers
    so far, by directory)."""
    seen = {} if seen is None else seen
    for parent in _ancestors(path):
        if parent not in seen:
            seen[parent] = traversable(parent, uid, gid)
        if not seen[parent]:
            return parent
    return None


def plan_view(read_only: Iterable[str | Path], read_write: Iterable[str | Path], masked: Iterable[str | Path],
              uid: int, gid: int) -> list[tuple[str, list[str]]]:
    """Which directories to cover with an empty tmpfs (outermost only, /proc last), each with
    the needed paths beneath it to bind back (outermost only): ``[(cover, [path, ...]), ...]``."""
    needed = [p for p in map(_normal, [*read_only, *read_write]) if os.path.exists(p)]
    covers = {m for m in map(_normal, masked) if os.path.isdir(m)}
    seen: dict[str, bool] = {}
    covers |= {a for p in needed if (a := blocking_ancestor(p, uid, gid, seen)) is not None}
    covers = {c for c in covers if not any(_below(c, o) for o in covers)}
    plan = []
    # /proc goes last: the binds name their sources through /proc/self/fd.
    for cover in sorted(covers, key=lambda c: (c == str(PROC), c)):
        beneath = [p for p in needed if _below(p, cover)]
        plan.append((cover, [p for p in beneath if not any(_below(p, q) for q in beneath)]))
    return plan


def _normal(path: str | Path) -> str:
    return os.path.normpath(os.fspath(path))


def build_view(read_only: Iterable[str | Path], read_write: Iterable[str | Path], masked: Iterable[str | Path],
               uid: int, gid: int) -> None:
    """Enter a private mount namespace and shape it (see the module docstring)."""
    writable = set(map(_normal, read_write))
    plan = plan_view(read_only, writable, masked, uid, gid)
    unshare(CLONE_NEWNS)
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    for cover, beneath in plan:
        handles = {p: os.open(p, os.O_PATH | os.O_CLOEXEC) for p in beneath}
        try:
            _mount("tmpfs", cover, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=64k,mode=0755")
            for p, fd in handles.items():
                _make_mountpoint(cover, p, is_dir=stat.S_ISDIR(os.fstat(fd).st_mode))
                _mount(f"/proc/self/fd/{fd}", p, None, MS_BIND | MS_REC)
                if p not in writable:
                    _mount(None, p, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | _kept_flags(p))
            _mount(None, cover, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)
        finally:
            for fd in handles.values():
                os.close(fd)


def _kept_flags(path: str) -> int:
    """The flags of the mount holding ``path`` that a remount must repeat (in a user namespace
    the kernel refuses a remount that would drop them)."""
    found = os.statvfs(path).f_flag
    return sum(flag for st, flag in _LOCKED.items() if found & st)


def enter_user_namespace() -> None:
    """Become root of a new user namespace, mapped to the caller's own uid and gid (the only
    mapping an unprivileged process may write). Its capabilities reach only namespaces it
    creates from here on; ``drop_capabilities`` ends them once the view is built.

    Leaves the process not dumpable. A process forked by the zygote is not (no process of the
    same uid may read its memory), but the kernel gives a non-dumpable process's /proc/self
    files to root, so its own maps could not be written: it is dumpable for those writes only."""
    uid, gid = os.getuid(), os.getgid()
    unshare(CLONE_NEWUSER)
    _check(_libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0), "prctl(PR_SET_DUMPABLE, 1)")
    try:
        for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
            fd = os.open(f"/proc/self/{name}", os.O_WRONLY | os.O_CLOEXEC)
            try:
                os.write(fd, text.encode())
            finally:
                os.close(fd)
    finally:
        _check(_libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0), "prctl(PR_SET_DUMPABLE, 0)")


def drop_capabilities() -> None:
    """Clear every capability (effective, permitted, inheritable) of this process."""
    header = (ctypes.c_uint32 * 2)(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (ctypes.c_uint32 * 6)()
    _check(_libc.capset(header, data), "capset")


def user_namespaces_work() -> bool:
    """Whether this system lets an unprivileged process build a spoke's view: a user namespace
    with mount, network and IPC namespaces and a tmpfs. Probed in a throwaway child (some
    distributions forbid it, e.g. Ubuntu's AppArmor restriction, or a sysctl)."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        code = 1
        try:
            enter_user_namespace()
            unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC)
            _mount(None, "/", None, MS_REC | MS_PRIVATE)
            _mount("tmpfs", "/proc", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=4k")
            drop_capabilities()
            code = 0
        except BaseException:  # noqa: BLE001 - any failure means "no"
            code = 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def _make_mountpoint(cover: str, target: str, is_dir: bool) -> None:
    for parent in _ancestors(target):
        if _below(parent, cover) and not os.path.lexists(parent):
            os.mkdir(parent, 0o755)
    if is_dir:
        os.makedirs(target, 0o755, exist_ok=True)
    elif not os.path.lexists(target):
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644))
