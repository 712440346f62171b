"""Runs in: hub, zygote, spoke (the hub decides a command server's start with ``plan``; a spoke
starts it with ``start`` before its own Landlock and seccomp, and its code takes the pipes with
``take``; the zygote imports it with ``confine``).

An MCP command server (a stdio server in any language, named by an argv) as a confined process of
its own, next to its app's spoke.

The spoke forks it once its mount view, rlimits and identity are in place, which the child
inherits with its namespaces, and before its own Landlock and seccomp: after those the spoke can
never fork. The child then confines itself as the spoke will, with two differences. Landlock: the
spoke's paths, but the execute right only on the files the kernel runs for the server (its
binary, the binary's ELF interpreter, a script's ``#!`` interpreter and that one's; decided by
the hub, ``plan``). seccomp: the spoke's allow-list, compiled for the child's pid, with execve
sent to a supervisor (user notification) instead of denied. It measures what it applied, sends
the report and the filter's listener to the spoke, and execs the server: stdin and stdout on
pipes to the spoke, stderr to a log in the app's data directory, the environment the hub decided.

The spoke is the supervisor for one call: it lets the child's exec of the binary through, then
closes the listener. A filter whose listener is gone fails the call (ENOSYS): from the server's
first instruction on, every execve fails, whatever the file (the loader named as the program,
with the program to load as its argument, included); execveat is denied outright. The spoke
then goes on with its own confinement; its code gets the pipes from ``take``.

What the server's process is left with: its own code, running in its own process under the same
view, identity, limits and filter as a spoke (no new process, no socket but its pipes, no signal
or trace to anyone else), with the execute right it no longer can use. It can still map and run
any code it can read, in its own process: that is what running a server is. Its stdout is its
own word: the spoke's client parses it as untrusted. It dies with its spoke (parent-death signal).
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import select
import signal
import socket
import stat
import struct
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from helpers.isc.control import Confinement, ServerCommand
from helpers.isc.messages import ServerReport
from helpers.sandbox import landlock, seccomp
from helpers.sandbox.policy import ZYGOTE_ENV_KEEP
from helpers.utilities.errors import SandboxError

if TYPE_CHECKING:
    from helpers.sandbox.confine import Namespaces

LOG_NAME = "mcp-server.stderr.log"  # in the app's data directory, rewritten at each start
START_TIMEOUT = 30.0  # for the child to confine itself and exec (a filter compiled: milliseconds)
MAX_INTERPRETERS = 4  # the kernel's limit on nested interpreters (BINPRM_MAX_RECURSION)
MAX_REPORT = 64 * 1024
PR_SET_PDEATHSIG, PR_GET_SECCOMP = 1, 21
# struct seccomp_notif (id, pid, flags, seccomp_data: nr, arch, ip, args[6]) and
# struct seccomp_notif_resp (id, val, error, flags); ioctl numbers _IOWR('!', 0 | 1, size).
NOTIF = struct.Struct("=QIIiIQ6Q")
NOTIF_RESP = struct.Struct("=QqiI")
SECCOMP_IOCTL_NOTIF_RECV = 0xC0000000 | NOTIF.size << 16 | ord("!") << 8 | 0
SECCOMP_IOCTL_NOTIF_SEND = 0xC0000000 | NOTIF_RESP.size << 16 | ord("!") << 8 | 1
SECCOMP_USER_NOTIF_FLAG_CONTINUE = 1
_libc = ctypes.CDLL(None, use_errno=True)


@dataclass(frozen=True)
class ServerPipes:
    """The spoke's ends of its command server's stdio: write requests to ``stdin_fd``, read its
    answers from ``stdout_fd``. ``pid``: the server's process, the spoke's child (reap it with
    ``os.waitpid``; the spoke cannot signal it: close ``stdin_fd`` to ask it to end)."""

    pid: int
    stdin_fd: int
    stdout_fd: int


_pipes: ServerPipes | None = None


def take() -> ServerPipes | None:
    """This spoke's command server pipes, once (None: no server, or taken already)."""
    global _pipes
    pipes, _pipes = _pipes, None
    return pipes


# --- the hub's decision -------------------------------------------------------------------------

def plan(argv: Sequence[str], env: Mapping[str, str], data_dir: Path, writable: Iterable[Path]) -> ServerCommand:
    """How ``argv`` runs for the app whose data directory is ``data_dir``: the files the kernel
    executes for it (none may lie under ``writable``: an app would rewrite what is run), its
    environment (``env`` over a minimal one, nothing of the hub's) and its log."""
    if not argv or not os.path.isabs(argv[0]):
        raise SandboxError(f"an MCP server command must start with an absolute path (got {list(argv)[:1]}): "
                           "write the program's full path, e.g. /usr/bin/node")
    for key, value in env.items():
        if not key or "=" in key or "\0" in key or "\0" in value:
            raise SandboxError(f"the MCP server's environment variable {key!r} is malformed; fix its manifest")
    files = executables(argv[0])
    for file in files:
        for place in writable:
            if Path(file).is_relative_to(place):
                raise SandboxError(f"the MCP server runs {file}, which lies under {place}, a place apps can "
                                   "write; install the server outside the data directory")
    environment = {k: os.environ[k] for k in ZYGOTE_ENV_KEEP if k in os.environ}
    environment.update({"PATH": "/usr/bin:/bin", "HOME": str(data_dir), "TMPDIR": str(data_dir)})
    environment.update(env)
    return ServerCommand(argv=list(argv), env=environment, executable=files, log=str(data_dir / LOG_NAME))


def executables(program: str) -> list[str]:
    """Every file the kernel opens to run ``program`` (resolved): the program, and in turn the
    interpreter a ``#!`` line names or the ELF interpreter (dynamic loader) a binary names."""
    found: list[str] = []
    path = program
    for _ in range(MAX_INTERPRETERS + 1):
        real = os.path.realpath(path)
        try:
            with open(real, "rb") as file:
                info = os.fstat(file.fileno())
                head = file.read(256)
                following = _elf_interpreter(file) if head[:4] == b"\x7fELF" else None
        except OSError as exc:
            raise SandboxError(f"the MCP server's program {path} cannot be read ({exc.strerror}); "
                               "check the command in its manifest") from exc
        if not stat.S_ISREG(info.st_mode) or not info.st_mode & 0o111:
            raise SandboxError(f"{path} is not an executable file; check the MCP server's command")
        if real not in found:
            found.append(real)
        if head.startswith(b"#!"):
            following = _shebang(path, head)
        elif head[:4] != b"\x7fELF":
            raise SandboxError(f"{path} is neither an ELF binary nor a #! script; name the program that runs it")
        if following is None:
            return found
        path = following
    raise SandboxError(f"{program} nests more than {MAX_INTERPRETERS} interpreters; name the last one in the command")


def _shebang(path: str, head: bytes) -> str:
    words = head[2:].split(b"\n", 1)[0].split()
    if not words or b"\n" not in head:
        raise SandboxError(f"{path} has an unreadable #! line")
    interpreter = words[0].decode(errors="replace")
    if not os.path.isabs(interpreter) or os.path.basename(interpreter) == "env":
        raise SandboxError(f"{path} runs through {interpreter!r}, which would look up and run another program: "
                           f"name its interpreter in the command, e.g. [\"/usr/bin/python3\", \"{path}\"]")
    return interpreter


def _elf_interpreter(file: BinaryIO) -> str | None:
    """The PT_INTERP path of the ELF file open as ``file`` (None: a static binary)."""
    file.seek(0)
    ident = file.read(64)
    if len(ident) < 52 or ident[4] not in (1, 2) or ident[5] not in (1, 2):
        raise SandboxError("an ELF file with an unknown class or byte order")
    order = "<" if ident[5] == 1 else ">"
    if ident[4] == 2:
        phoff, phentsize, phnum = struct.unpack_from(order + "32xQ14xHH", ident)
        entry, offset_of, size_of = struct.Struct(order + "IIQQQQQQ"), 2, 5
    else:
        phoff, phentsize, phnum = struct.unpack_from(order + "28xI10xHH", ident)
        entry, offset_of, size_of = struct.Struct(order + "IIIIIIII"), 1, 4
    for index in range(min(phnum, 256)):
        file.seek(phoff + index * phentsize)
        header = entry.unpack(file.read(entry.size))
        if header[0] == 3:  # PT_INTERP
            file.seek(header[offset_of])
            return bytes(file.read(min(header[size_of], 4096))).split(b"\0", 1)[0].decode()
    return None


# --- the spoke's side ---------------------------------------------------------------------------

def start(spec: Confinement, namespaces: Namespaces) -> ServerReport:
    """Fork the process of ``spec.server``, supervise its one exec, keep its pipes for ``take``; returns
    its report, measured by the child before the exec, ``exec_once`` by this process. Called by
    ``confine`` after the identity and before Landlock and seccomp; raises SandboxError (the
    child killed) if the child could not confine itself or run the server."""
    global _pipes
    server = spec.server
    if server is None:
        raise SandboxError("this spoke's confinement names no MCP server command")
    to_server = os.pipe2(os.O_CLOEXEC)
    from_server = os.pipe2(os.O_CLOEXEC)
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    spoke = os.getpid()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child, until it runs the server
        ours.close()
        _become_server(spec, server, namespaces, spoke, theirs, stdin=to_server[0], stdout=from_server[1])
    theirs.close()
    os.close(to_server[0])
    os.close(from_server[1])
    try:
        report = _supervise(ours, pid, server, time.monotonic() + START_TIMEOUT)
    except BaseException:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(to_server[1])
        os.close(from_server[0])
        raise
    finally:
        ours.close()
    _pipes = ServerPipes(pid=pid, stdin_fd=to_server[1], stdout_fd=from_server[0])
    return report


def _supervise(sock: socket.socket, pid: int, server: ServerCommand, deadline: float) -> ServerReport:
    """Receive the child's report and listener, let its exec through, close the listener, and
    wait until the exec closed the child's end of ``sock`` (or it says why it failed).
    ``exec_once`` is measured here: True only if the exec came to this supervisor and was let
    through (an exec that never asked, under a filter that does not supervise it, leaves it False)."""
    data, fds = _receive(sock, deadline)
    if not fds:
        raise SandboxError(f"the MCP server's process could not confine itself: {_error(data)}")
    listener, supervised = fds[0], False
    try:
        for extra in fds[1:]:
            os.close(extra)
        report = ServerReport.model_validate_json(data)
        if listener in _ready([listener, sock], deadline):
            request_id, caller, _, syscall = _next_notification(listener)[:4]
            supervised = caller == pid and syscall == seccomp.syscall_number("execve")
            _respond(listener, request_id, supervised)
            if not supervised:
                raise SandboxError(f"the MCP server's supervisor was asked for system call {syscall} by pid {caller}")
    finally:
        os.close(listener)  # from here on every execve of the server fails: no one to ask
    data, _ = _receive(sock, deadline)
    if data:
        raise SandboxError(f"the MCP server {server.argv[0]} could not be started: {_error(data)}")
    return report.model_copy(update={"exec_once": supervised})


def _ready(fds: list[Any], deadline: float) -> list[Any]:
    ready = select.select(fds, [], [], max(deadline - time.monotonic(), 0))[0]
    if not ready:
        raise SandboxError(f"the MCP server's process did not start within {START_TIMEOUT:.0f}s")
    return ready


def _receive(sock: socket.socket, deadline: float) -> tuple[bytes, list[int]]:
    _ready([sock], deadline)
    data, fds, _, _ = socket.recv_fds(sock, MAX_REPORT, 4)
    return data, fds


def _error(data: bytes) -> str:
    try:
        return str(json.loads(data)["error"])[:1000]
    except (ValueError, KeyError, TypeError):
        return "it ended without saying why"


def _next_notification(listener: int) -> tuple[int, ...]:
    buffer = ctypes.create_string_buffer(NOTIF.size)  # zeroed, as the kernel requires
    if _libc.ioctl(listener, ctypes.c_ulong(SECCOMP_IOCTL_NOTIF_RECV), buffer) != 0:
        raise SandboxError(f"seccomp notification: {os.strerror(ctypes.get_errno())}")
    return NOTIF.unpack(buffer.raw)


def _respond(listener: int, request_id: int, allowed: bool) -> None:
    flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE if allowed else 0
    response = NOTIF_RESP.pack(request_id, 0, 0 if allowed else -1, flags)  # -EPERM if refused
    buffer = ctypes.create_string_buffer(response, len(response))
    if _libc.ioctl(listener, ctypes.c_ulong(SECCOMP_IOCTL_NOTIF_SEND), buffer) != 0:
        raise SandboxError(f"seccomp notification answer: {os.strerror(ctypes.get_errno())}")


def _become_server(spec: Confinement, server: ServerCommand, namespaces: Namespaces, spoke: int,
                   sock: socket.socket, stdin: int, stdout: int) -> None:  # pragma: no cover - runs in the child
    """The child: stdio, confinement, report, exec; never returns."""
    try:
        os.dup2(stdin, 0)
        os.dup2(stdout, 1)
        log = os.open(server.log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        os.dup2(log, 2)
        # Set after the identity was dropped (a change of credentials clears it); the spoke
        # must still be the parent, else it died in between.
        if _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0 or os.getppid() != spoke:
            os._exit(1)
        namespaces.rebase()  # its own, compared with the zygote's as the spoke's are
        # Python ignores these; an ignored signal stays ignored across exec.
        for number in (signal.SIGPIPE, signal.SIGXFSZ):
            signal.signal(number, signal.SIG_DFL)
        abi = landlock.restrict(spec.read_only, spec.read_write, execute=server.executable)
        program = seccomp.compile_filter(os.getpid(), spec.seccomp_exceptions, supervised=True)
        listener = seccomp.install(program, listener=True)
        changed = namespaces.changed()
        report = ServerReport(
            pid=os.getpid(), uid=os.getuid(), gid=os.getgid(),
            rlimits={name: resource.getrlimit(getattr(resource, name))[0] for name in spec.rlimits},
            seccomp=int(_libc.prctl(PR_GET_SECCOMP, 0, 0, 0, 0)) == 2, landlock_abi=abi,
            mount_namespace="mnt" in changed, network_namespace="net" in changed,
            user_namespace="user" in changed, seccomp_exceptions=list(spec.seccomp_exceptions),
            executable=list(server.executable))
        namespaces.close()
        if listener is None:
            raise SandboxError("the filter gave no listener")
        socket.send_fds(sock, [report.model_dump_json().encode()], [listener])
        os.close(listener)
        keep = sock.fileno()
        os.closerange(3, keep)
        os.closerange(keep + 1, os.sysconf("SC_OPEN_MAX"))
        os.execve(server.argv[0], server.argv, server.env)
    except BaseException as exc:  # noqa: BLE001 - told to the spoke, never run past
        try:
            sock.send(json.dumps({"error": f"{type(exc).__name__}: {exc}"}).encode()[:MAX_REPORT])
        finally:
            os._exit(127)
