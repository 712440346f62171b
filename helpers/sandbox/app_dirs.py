"""Runs in: hub (often as root).

Hub-side file operations on the directories apps can write (their data directories).

A spoke may create anything in its own data directory, symbolic links included
(a link there is harmless to the spoke itself). The hub, which may be root, must
therefore never resolve a path inside it: a planted ``token.json -> /etc/shadow``
would have the hub overwrite and chown a file the app could never touch. Every
operation here walks from a trusted root (the data directory, which no app can
write) with directory descriptors opened ``O_NOFOLLOW``; creates files
``O_EXCL | O_NOFOLLOW`` under a temporary name and renames them into place
through the directory descriptor (a rename replaces a link, never writes
through it); sets owner and mode on the open descriptor (``fchown``/``fchmod``),
never by path. A link where the hub expects a directory or a file is refused
with ``UnsafeAppPath``, never followed. Nothing here may take a path string
into an app's directory and hand it to ``open``, ``chown`` or ``chmod``.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from helpers.configs import paths
from helpers.utilities.errors import SandboxError

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC  # NONBLOCK: a planted FIFO cannot hang us
MAX_READ = 16 * 1024 * 1024


class UnsafeAppPath(SandboxError):
    """Something in an app's directory is not what the hub expects (a link, a FIFO, ...)."""


def prepare_app_dir(directory: Path, identity: tuple[int, int] | None, root: Path | None = None) -> None:
    """Create ``directory`` (an app's data directory, under ``root``, by default the data
    directory) if missing, and make it the app's: owner ``identity`` (None: keep), mode 0700."""
    fd = open_dir(directory, root, create=True)
    try:
        if identity is not None:
            if os.fstat(fd).st_uid != identity[0]:
                _reown_tree(fd, identity)  # written by another uid (an older version's shared one)
            os.fchown(fd, *identity)
        os.fchmod(fd, 0o700)
    finally:
        os.close(fd)


def _reown_tree(fd: int, identity: tuple[int, int]) -> None:
    """Give everything below the directory ``fd`` to ``identity``: links themselves, never what
    they point to, and no descent into a linked directory (fwalk checks each one it enters)."""
    for _, dirs, files, dir_fd in os.fwalk(".", dir_fd=fd, follow_symlinks=False):
        for name in (*dirs, *files):
            os.chown(name, *identity, dir_fd=dir_fd, follow_symlinks=False)


def write_file(directory: Path, name: str, data: bytes, *, mode: int = 0o600,
               owner: tuple[int, int] | None = None, root: Path | None = None) -> Path:
    """Put ``data`` in ``directory/name`` atomically: a new file (owner, mode set on it), then a
    rename over the old entry. Refuses when ``name`` is a link or anything but a regular file."""
    _check_name(name)
    dir_fd = open_dir(directory, root)
    try:
        _refuse_unless_file(dir_fd, name, directory, missing_ok=True)
        temporary = f".{name}.{secrets.token_hex(8)}.tmp"
        fd = os.open(temporary, NEW_FILE_FLAGS, 0o600, dir_fd=dir_fd)
        try:
            try:
                if owner is not None:
                    os.fchown(fd, *owner)
                os.fchmod(fd, mode)
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            finally:
                os.close(fd)
            # Replaces whatever the entry is now (a link planted since the check included):
            # rename never follows the destination.
            os.rename(temporary, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException:
            try:
                os.unlink(temporary, dir_fd=dir_fd)
            except OSError:
                pass
            raise
    finally:
        os.close(dir_fd)
    return directory / name


def read_file(directory: Path, name: str, *, limit: int = MAX_READ, root: Path | None = None) -> bytes:
    """The bytes of the regular file ``directory/name`` (at most ``limit``), never through a link."""
    _check_name(name)
    dir_fd = open_dir(directory, root)
    try:
        try:
            fd = os.open(name, READ_FLAGS, dir_fd=dir_fd)
        except OSError:
            _refuse_unless_file(dir_fd, name, directory, missing_ok=False)
            raise
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise UnsafeAppPath(f"{directory / name} is not a regular file; the hub reads only regular "
                                    "files in an app's directory: remove it and try again")
            chunks, size = [], 0
            while size < limit and (chunk := os.read(fd, min(1 << 20, limit - size))):
                chunks.append(chunk)
                size += len(chunk)
            return b"".join(chunks)
        finally:
            os.close(fd)
    finally:
        os.close(dir_fd)


def open_dir(directory: Path, root: Path | None = None, *, create: bool = False) -> int:
    """A descriptor of ``directory``, reached from ``root`` (trusted, by default the data
    directory) one component at a time without following any link. Missing components are
    created when ``create`` (mode 0755 on the way, 0700 for the last). The caller closes it."""
    root = Path(root or paths.data_dir())
    directory = Path(directory)
    if not directory.is_absolute() or not directory.is_relative_to(root):
        raise SandboxError(f"{directory} is not under {root}; app directories live in the data directory")
    parts = directory.relative_to(root).parts
    if any(part in (".", "..") for part in parts):
        raise SandboxError(f"{directory}: '.' and '..' are not allowed in an app directory's path")
    if create:
        root.mkdir(parents=True, exist_ok=True)  # the root is the hub's own, not an app's
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for index, part in enumerate(parts):
            if create:
                try:
                    os.mkdir(part, 0o700 if index == len(parts) - 1 else 0o755, dir_fd=fd)
                except FileExistsError:
                    pass
            try:
                child = os.open(part, DIR_FLAGS, dir_fd=fd)
            except OSError:
                _refuse_link(fd, part, root.joinpath(*parts[:index + 1]), "a directory")
                raise
            os.close(fd)
            fd = child
        return fd
    except BaseException:
        os.close(fd)
        raise


def _refuse_link(dir_fd: int, name: str, where: Path, expected: str) -> None:
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(st.st_mode):
        raise UnsafeAppPath(f"{where} is a symbolic link where the hub expects {expected}; an app may have "
                            f"planted it, and the hub never follows links in app directories: remove it "
                            f"(rm {where}) and try again")


def _check_name(name: str) -> None:
    if not name or "/" in name or name in (".", ".."):
        raise SandboxError(f"{name!r} is not a file name")


def _refuse_unless_file(dir_fd: int, name: str, directory: Path, missing_ok: bool) -> None:
    _refuse_link(dir_fd, name, directory / name, "a regular file")
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        if missing_ok:
            return
        raise
    if not stat.S_ISREG(st.st_mode):
        raise UnsafeAppPath(f"{directory / name} is not a regular file; the hub only replaces regular files in "
                            "an app's directory: remove it and try again")
