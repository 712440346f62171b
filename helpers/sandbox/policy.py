"""Runs in: hub, zygote, spoke, vanillagpt.

The sandbox policy, as data: what a spoke may never do, and the limits it runs under.

Every entry here is enforced by a layer (seccomp.py, rlimits.py, landlock.py,
mounts.py) and covered by a parametrized test. Per-app overrides come from the
app's manifest (``ResourceLimits``) and can only change sizes, never switch a
layer off.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import os
import resource
import site
import sys
import sysconfig
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from helpers.configs import paths

MiB = 1024 * 1024

# The seccomp filter is an allow-list: a call that is in neither ALLOWED_SYSCALLS nor (in the form
# given) CONDITIONAL_SYSCALLS fails with EPERM, so whatever the next kernel adds is denied until
# someone reads it and adds it here with its reason. Nothing is ever killed (Python raises).
DEFAULT_ERRNO = errno.EPERM
DENY_ERRNO = errno.EPERM

# Calls glibc tries first and falls back from only on ENOSYS: they say ENOSYS ("this kernel lacks
# it"), so the interpreter takes the older path, which is on the allow-list.
ENOSYS_SYSCALLS: dict[str, str] = {
    "clone3": "glibc falls back to clone, whose flags (unlike clone3's, behind a pointer) seccomp can check",
    "openat2": "its resolve flags sit behind a pointer; open/openat cover every use",
}

# Allowed as they are, each with the reason a spoke (the interpreter, threads, asyncio, the agent,
# the app libraries, the Google client) needs it. Every entry is one the kernel confines to the
# calling process or to files Landlock and the mount view already decide on.
ALLOWED_SYSCALLS: dict[str, str] = {
    # memory of its own
    "brk": "heap", "mmap": "memory and mapped files", "munmap": "memory", "mremap": "memory",
    "mprotect": "memory protection (thread stacks, JIT-less guards)", "madvise": "malloc returns memory",
    "msync": "mapped files of its own", "mbind": "OpenBLAS sets its memory policy",
    "get_mempolicy": "NUMA-aware allocators read their policy", "set_mempolicy": "NUMA policy of itself",
    "membarrier": "runtimes order memory across their own threads",
    # files (Landlock and the mount view decide which ones)
    "read": "read", "write": "write", "pread64": "read at an offset", "pwrite64": "write at an offset",
    "readv": "vectored read", "writev": "vectored write", "preadv": "vectored read",
    "pwritev": "vectored write", "preadv2": "vectored read", "pwritev2": "vectored write",
    "open": "open a file", "openat": "open a file", "close": "close", "close_range": "close many fds",
    "lseek": "seek", "stat": "file status", "fstat": "file status", "lstat": "file status",
    "newfstatat": "file status", "statx": "file status", "statfs": "filesystem status",
    "fstatfs": "filesystem status", "access": "permission check", "faccessat": "permission check",
    "faccessat2": "permission check", "readlink": "read a link", "readlinkat": "read a link",
    "getdents64": "list a directory", "getdents": "list a directory", "getcwd": "current directory",
    "chdir": "change directory", "fchdir": "change directory", "mkdir": "make a directory (own dir)",
    "mkdirat": "make a directory (own dir)", "rmdir": "remove a directory (own dir)",
    "unlink": "remove a file (own dir)", "unlinkat": "remove a file (own dir)",
    "rename": "rename (own dir)", "renameat": "rename (own dir)", "renameat2": "rename (own dir)",
    "symlink": "make a link inside its own dir (the hub never follows links there)",
    "symlinkat": "make a link inside its own dir (the hub never follows links there)",
    "ftruncate": "truncate an open file", "fallocate": "reserve file space", "fsync": "flush a file",
    "fdatasync": "flush a file", "fadvise64": "read-ahead hints", "umask": "file creation mask",
    "sendfile": "shutil copies files", "copy_file_range": "shutil copies files",
    "getxattr": "shutil.copy2 reads extended attributes", "lgetxattr": "read extended attributes",
    "fgetxattr": "read extended attributes", "listxattr": "shutil.copy2 lists extended attributes",
    "llistxattr": "list extended attributes", "flistxattr": "list extended attributes",
    "dup": "duplicate an fd", "dup2": "duplicate an fd", "dup3": "duplicate an fd",
    "pipe": "pipes inside the spoke", "pipe2": "pipes inside the spoke",
    # events and waiting
    "select": "wait for fds", "pselect6": "wait for fds", "poll": "wait for fds", "ppoll": "wait for fds",
    "epoll_create": "asyncio", "epoll_create1": "asyncio", "epoll_ctl": "asyncio", "epoll_wait": "asyncio",
    "epoll_pwait": "asyncio", "epoll_pwait2": "asyncio", "eventfd": "event loops", "eventfd2": "event loops",
    "timerfd_create": "timers", "timerfd_settime": "timers", "timerfd_gettime": "timers",
    "signalfd": "signals as fds", "signalfd4": "signals as fds",
    # the hub channel and socketpairs (no new socket can be opened: see DENIED_SYSCALLS)
    "sendto": "send on its sockets", "recvfrom": "receive on its sockets", "sendmsg": "send on its sockets",
    "recvmsg": "receive on its sockets", "sendmmsg": "send on its sockets", "recvmmsg": "receive on its sockets",
    "shutdown": "close a socket direction", "getsockname": "socket address", "getpeername": "peer address",
    "getsockopt": "socket options", "setsockopt": "socket options",
    # threads and its own process
    "futex": "locks between its threads", "set_robust_list": "thread start",
    "set_tid_address": "thread start", "rseq": "thread start (glibc)", "exit": "end a thread",
    "exit_group": "end the spoke", "gettid": "own thread id", "getpid": "own pid", "getppid": "parent pid",
    "getuid": "own identity", "geteuid": "own identity", "getgid": "own identity", "getegid": "own identity",
    "getresuid": "own identity", "getresgid": "own identity", "getgroups": "own identity",
    "getpgrp": "own process group", "capget": "read its own capabilities", "sched_yield": "yield the CPU",
    "getcpu": "which CPU it runs on", "getrusage": "its own resource use", "times": "its own CPU time",
    "getrlimit": "read its limits", "wait4": "reap its own children (none, or its MCP command server)",
    "waitid": "reap its own children (none, or its MCP command server)",
    "uname": "platform module", "sysinfo": "memory size (libraries size caches)",
    "getrandom": "randomness", "restart_syscall": "resume an interrupted call",
    # signals within the spoke (signals to others: see CONDITIONAL_SYSCALLS)
    "rt_sigaction": "signal handlers", "rt_sigprocmask": "signal masks", "rt_sigreturn": "signal return",
    "sigaltstack": "signal stacks", "rt_sigpending": "pending signals", "rt_sigtimedwait": "wait for signals",
    "rt_sigsuspend": "wait for signals", "pause": "wait for signals", "alarm": "timer signal to itself",
    "getitimer": "interval timers", "setitimer": "interval timers", "timer_create": "POSIX timers of its own",
    "timer_settime": "POSIX timers", "timer_gettime": "POSIX timers", "timer_getoverrun": "POSIX timers",
    "timer_delete": "POSIX timers",
    # time
    "clock_gettime": "time", "clock_getres": "time", "clock_nanosleep": "sleep", "nanosleep": "sleep",
    "gettimeofday": "time", "time": "time",
}

# Allowed only in the harmless form given; every other form fails with EPERM. Each is encoded in
# seccomp.py; a comparison on a 32-bit argument (int, pid_t, unsigned int) masks the upper half,
# since the kernel ignores it: comparing 64 bits let ``ALLOWED | 1<<32`` (or, in a deny rule,
# ``DENIED | 1<<32``) take the other branch.
CONDITIONAL_SYSCALLS: dict[str, str] = {
    "clone": "threads only (CLONE_THREAD set), never a new process",
    "socketpair": "AF_UNIX only",
    "prlimit64": "its own limits (pid 0), read only (new-limit pointer NULL)",
    "kill": "only to itself", "tgkill": "only to its own threads",
    "rt_sigqueueinfo": "only to itself", "rt_tgsigqueueinfo": "only to its own threads",
    "prctl": "only the options in PRCTL_ALLOWED",
    "ioctl": "only the requests in IOCTL_ALLOWED",
    "fcntl": "only the commands in FCNTL_ALLOWED (no locks, leases, signal ownership, dnotify)",
    "getpgid": "its own (pid 0)", "getsid": "its own (pid 0)",
    "getpriority": "its own (PRIO_PROCESS, who 0)", "setpriority": "its own (PRIO_PROCESS, who 0)",
    "sched_getaffinity": "its own (pid 0)", "sched_setaffinity": "its own (pid 0)",
    "sched_getparam": "its own (pid 0)", "sched_setparam": "its own (pid 0)",
    "sched_getscheduler": "its own (pid 0)", "sched_setscheduler": "its own (pid 0)",
    "sched_getattr": "its own (pid 0)", "sched_setattr": "its own (pid 0)",
    "ioprio_get": "its own (IOPRIO_WHO_PROCESS, who 0)", "ioprio_set": "its own (IOPRIO_WHO_PROCESS, who 0)",
    "utimensat": "on an open fd only (path NULL): timestamps by path are not covered by Landlock",
    "arch_prctl": "only ARCH_GET_FS / ARCH_SET_FS / ARCH_GET_GS (thread-local storage)",
}
CLONE_THREAD = 0x00010000
PRIO_PROCESS, IOPRIO_WHO_PROCESS = 0, 1
PRCTL_ALLOWED = {"PR_GET_PDEATHSIG": 2, "PR_GET_DUMPABLE": 3, "PR_SET_NAME": 15, "PR_GET_NAME": 16,
                 "PR_GET_SECCOMP": 21, "PR_CAPBSET_READ": 23, "PR_GET_TIMERSLACK": 30,
                 "PR_GET_NO_NEW_PRIVS": 39, "PR_SET_VMA": 0x53564D41}
IOCTL_ALLOWED = {"TCGETS": 0x5401, "TIOCGPGRP": 0x540F, "TIOCGWINSZ": 0x5413, "FIONREAD": 0x541B,
                 "FIONBIO": 0x5421, "FIONCLEX": 0x5450, "FIOCLEX": 0x5451}
FCNTL_ALLOWED = {"F_DUPFD": 0, "F_GETFD": 1, "F_SETFD": 2, "F_GETFL": 3, "F_SETFL": 4, "F_GETOWN": 9,
                 "F_GETSIG": 11, "F_GETOWN_EX": 16, "F_DUPFD_CLOEXEC": 1030, "F_GETPIPE_SZ": 1032,
                 "F_GET_SEALS": 1034}
FCNTL_LOCKS = {"F_GETLK": 5, "F_SETLK": 6, "F_SETLKW": 7, "F_OFD_GETLK": 36, "F_OFD_SETLK": 37,
               "F_OFD_SETLKW": 38}
ARCH_PRCTL_ALLOWED = {"ARCH_SET_GS": 0x1001, "ARCH_SET_FS": 0x1002, "ARCH_GET_FS": 0x1003,
                      "ARCH_GET_GS": 0x1004}

# An MCP command server's filter is the spoke's plus these, sent to a supervisor (seccomp user
# notification) instead of denied: the spoke, which lets exactly one through, the exec of the
# server's own binary by the server's start code, then closes the listener. With no listener the
# kernel fails the call (ENOSYS), so from the server's first instruction on nothing more is run.
SUPERVISED_SYSCALLS: dict[str, str] = {
    "execve": "the server's own start: its binary, once (helpers/sandbox/server_process.py)",
}

# Per-app exceptions a manifest may ask for (``"sandbox_exceptions": [...]``), each with what it
# re-opens. Nothing else can be switched on, and no layer off.
POLICY_EXCEPTIONS: dict[str, str] = {
    "file_locks": "flock and fcntl record locks (SQLite and other databases lock their own files). "
                  "Locks are visible to every process that can open the file, so two apps that both "
                  "hold this exception can signal each other through a shared read-only file.",
}

# Denied (EPERM: Python raises PermissionError), each with the escape it would enable. The default
# denies them already; they are listed so that the reason is on record and each has its own test.
DENIED_SYSCALLS: dict[str, str] = {
    "execve": "run another program",
    "execveat": "run another program",
    "fork": "start a process",
    "vfork": "start a process",
    "socket": "open a network (or any new) socket",
    "connect": "reach another endpoint",
    "bind": "listen on an address",
    "listen": "accept connections",
    "accept": "accept connections",
    "accept4": "accept connections",
    "ptrace": "inspect or control another process",
    "process_vm_readv": "read another process's memory",
    "process_vm_writev": "write another process's memory",
    "process_madvise": "act on another process's memory",
    "kcmp": "compare other processes' resources",
    "pidfd_open": "get a handle on another process",
    "pidfd_getfd": "steal another process's file descriptor",
    "pidfd_send_signal": "signal another process",
    "tkill": "signal another thread by id",
    "mount": "change the filesystem view",
    "umount2": "change the filesystem view",
    "pivot_root": "change the filesystem root",
    "chroot": "change the filesystem root",
    "open_tree": "change the filesystem view",
    "move_mount": "change the filesystem view",
    "fsopen": "change the filesystem view",
    "fsmount": "change the filesystem view",
    "fsconfig": "change the filesystem view",
    "fspick": "change the filesystem view",
    "mount_setattr": "change the filesystem view",
    "unshare": "enter new namespaces",
    "setns": "join another namespace",
    "bpf": "load kernel programs",
    "perf_event_open": "observe other processes or the kernel",
    "userfaultfd": "stall the kernel on page faults (exploit primitive)",
    "io_uring_setup": "bypass system call filtering",
    "io_uring_enter": "bypass system call filtering",
    "io_uring_register": "bypass system call filtering",
    "keyctl": "reach the kernel keyring",
    "add_key": "reach the kernel keyring",
    "request_key": "reach the kernel keyring",
    "init_module": "load kernel code",
    "finit_module": "load kernel code",
    "delete_module": "unload kernel code",
    "kexec_load": "replace the kernel",
    "kexec_file_load": "replace the kernel",
    "reboot": "reboot the machine",
    "swapon": "change system memory",
    "swapoff": "change system memory",
    "acct": "change system accounting",
    "syslog": "read the kernel log",
    "settimeofday": "change the clock",
    "clock_settime": "change the clock",
    "clock_adjtime": "change the clock",
    "adjtimex": "change the clock",
    "sethostname": "change the host name",
    "setdomainname": "change the host name",
    "iopl": "reach I/O ports",
    "ioperm": "reach I/O ports",
    "quotactl": "change disk quotas",
    "open_by_handle_at": "open files by handle, around path checks",
    "name_to_handle_at": "open files by handle, around path checks",
    "lookup_dcookie": "probe the kernel",
    "vhangup": "hang up the terminal",
    "personality": "change the execution domain",
    "mknod": "create device files",
    "mknodat": "create device files",
    "setuid": "change identity",
    "setgid": "change identity",
    "setreuid": "change identity",
    "setregid": "change identity",
    "setresuid": "change identity",
    "setresgid": "change identity",
    "setgroups": "change identity",
    "setfsuid": "change identity",
    "setfsgid": "change identity",
    "capset": "change capabilities",
    "setrlimit": "raise its own resource limits",
    # SysV and POSIX IPC: a channel between apps that bypasses the hub (and outlives them)
    "shmget": "share memory with another app", "shmat": "share memory with another app",
    "shmctl": "share memory with another app", "shmdt": "share memory with another app",
    "msgget": "pass messages to another app", "msgsnd": "pass messages to another app",
    "msgrcv": "pass messages to another app", "msgctl": "pass messages to another app",
    "semget": "signal another app", "semop": "signal another app", "semctl": "signal another app",
    "semtimedop": "signal another app",
    "mq_open": "pass messages to another app", "mq_unlink": "pass messages to another app",
    "mq_timedsend": "pass messages to another app", "mq_timedreceive": "pass messages to another app",
    "mq_notify": "pass messages to another app", "mq_getsetattr": "pass messages to another app",
    # Metadata changes by path: Landlock does not cover them (expose a file to others, truncate it)
    "chmod": "change a file's permissions by path", "fchmodat": "change a file's permissions by path",
    "chown": "change a file's owner by path", "lchown": "change a file's owner by path",
    "fchownat": "change a file's owner by path", "truncate": "truncate a file by path",
    "setxattr": "change extended attributes by path", "lsetxattr": "change extended attributes by path",
    "removexattr": "change extended attributes by path", "lremovexattr": "change extended attributes by path",
    # Storage channels between apps: no message, no permission, no audit
    "flock": "signal another app through a lock on a shared file (see POLICY_EXCEPTIONS)",
    "inotify_init": "watch files another app touches", "inotify_init1": "watch files another app touches",
    "inotify_add_watch": "watch files another app touches", "inotify_rm_watch": "watch files",
    "fanotify_init": "watch the filesystem", "fanotify_mark": "watch the filesystem",
    "mincore": "read the page cache (which files another app read)",
    "cachestat": "read the page cache (which files another app read)",
    # Metadata changes on an open fd, and the newer path-based forms
    "fchmod": "change the permissions of a file it may only read", "fchown": "give a file away",
    "fchmodat2": "change a file's permissions by path", "fsetxattr": "change extended attributes",
    "fremovexattr": "change extended attributes", "setxattrat": "change extended attributes by path",
    "removexattrat": "change extended attributes by path",
    "utime": "change timestamps by path", "utimes": "change timestamps by path",
    "futimesat": "change timestamps by path",
    # Others: the kernel's view, other processes, exploit primitives
    "listmount": "list the host's mounts", "statmount": "read the host's mounts",
    "modify_ldt": "change segment descriptors (exploit primitive)", "vmsplice": "exploit primitive",
    "sync": "stall the host's disks", "syncfs": "stall the host's disks",
    "seccomp": "load filters of its own", "landlock_create_ruleset": "its confinement is fixed",
    "landlock_add_rule": "its confinement is fixed", "landlock_restrict_self": "its confinement is fixed",
    "memfd_secret": "memory hidden from the kernel's checks", "get_robust_list": "read another thread's state",
    "migrate_pages": "move another process's memory", "move_pages": "move another process's memory",
    "mlock": "pin memory", "mlock2": "pin memory", "mlockall": "pin memory",
    "link": "hard-link a file into a place another app reads", "linkat": "hard-link a file",
}


class ResourceLimits(BaseModel):
    """Per-app overrides from the manifest. Sizes only: no layer can be switched off."""

    model_config = ConfigDict(extra="forbid")
    address_space_mb: int = Field(default=1024, ge=256, le=16384)
    cpu_seconds: int = Field(default=120, ge=1, le=3600)
    file_size_mb: int = Field(default=64, ge=1, le=4096)
    open_files: int = Field(default=64, ge=16, le=4096)
    request_timeout_s: float = Field(default=120.0, gt=0, le=3600)


def rlimits_for(limits: ResourceLimits) -> dict[str, int]:
    """The setrlimit values (soft = hard) a spoke applies to itself."""
    return {
        "RLIMIT_AS": limits.address_space_mb * MiB,
        "RLIMIT_CPU": limits.cpu_seconds,
        "RLIMIT_FSIZE": limits.file_size_mb * MiB,
        "RLIMIT_NOFILE": limits.open_files,
        "RLIMIT_CORE": 0,
        "RLIMIT_MEMLOCK": 0,
        "RLIMIT_MSGQUEUE": 0,
    }


# Threads of one app's spokes together (counted per uid by the kernel): bounds what a thread bomb
# can take from the host. Applied only when the spoke drops to its own uid; for a non-root hub it
# would count the user's own processes too.
SPOKE_USER_NPROC = 4096


CPU_HARD_GRACE_S = 1  # seconds between SIGXCPU (soft) and SIGKILL (hard)
RLIMIT_NUMBERS = {name: getattr(resource, name) for name in rlimits_for(ResourceLimits())}

# When the hub runs as root, each app's spoke takes a uid (and gid) of its own from this range, so
# that the kernel's own checks (signals, scheduling, /proc, file ownership, the thread cap) keep
# apps apart even where a filter would let something through. The uid is derived from the app's
# name, so an app keeps owning its data directory from one session to the next.
SPOKE_UID_BASE = 0x6F000000
SPOKE_UID_RANGE = 1 << 20


def spoke_identity(app: str) -> tuple[int, int] | None:
    """(uid, gid) ``app``'s spoke drops to, or None when the hub is not root (nothing to drop)."""
    if os.geteuid() != 0:
        return None
    uid = SPOKE_UID_BASE + int.from_bytes(hashlib.sha256(app.encode()).digest()[:4], "big") % SPOKE_UID_RANGE
    return uid, uid


# Environment of the zygote (and so of every spoke): nothing of the hub's.
ZYGOTE_ENV_KEEP = ("LANG", "LC_ALL", "TZ")


def zygote_environment() -> dict[str, str]:
    env = {k: os.environ[k] for k in ZYGOTE_ENV_KEEP if k in os.environ}
    env.update({
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(paths.REPO_ROOT),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONHASHSEED": "random",
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "HOME": "/nonexistent",
    })
    return env


@functools.lru_cache(maxsize=1)
def interpreter_paths() -> tuple[Path, ...]:
    """What the interpreter and its installed libraries need to read. Derived from the
    interpreter's own layout, never from ``sys.path`` (which holds the hub's script
    directory and the repository root, and so data/)."""
    found: list[Path] = []
    layout = sysconfig.get_paths()
    candidates = [sys.prefix, sys.base_prefix, sys.exec_prefix,
                  *(layout[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in layout),
                  *site.getsitepackages()]
    for entry in candidates:
        path = Path(entry).resolve()
        if not path.exists() or path in paths.REPO_ROOT.parents or path == paths.REPO_ROOT:
            continue
        found.append(path)
    return tuple(found)


SYSTEM_READ_ONLY = (Path("/usr"), Path("/lib"), Path("/lib64"), Path("/etc/localtime"),
                    Path("/etc/ld.so.cache"))
DEVICE_READ_WRITE = (Path("/dev/null"),)
PROC = Path("/proc")


@dataclass(frozen=True)
class SpokePolicy:
    """Everything a spoke applies to itself before app code runs."""

    app: str
    data_dir: Path
    limits: ResourceLimits = field(default_factory=ResourceLimits)
    extra_read_only: tuple[Path, ...] = ()
    exceptions: frozenset[str] = frozenset()  # names in POLICY_EXCEPTIONS, from the manifest
    # An MCP command server run next to the spoke (helpers/sandbox/server_process.py): its argv
    # (argv[0] absolute) and the environment variables it is given.
    server_command: tuple[str, ...] = ()
    server_env: Mapping[str, str] = field(default_factory=dict, hash=False)

    def rlimits(self) -> dict[str, int]:
        return rlimits_for(self.limits)

    def read_only_paths(self) -> list[Path]:
        code = [paths.REPO_ROOT / d for d in paths.CODE_DIRS]
        return _minimal([*interpreter_paths(), *SYSTEM_READ_ONLY, *code, *self.extra_read_only])

    def read_write_paths(self) -> list[Path]:
        return [self.data_dir, *DEVICE_READ_WRITE]

    def masked_paths(self) -> list[Path]:
        """Directories replaced by an empty tmpfs in the spoke's mount namespace (their
        needed children are bound back): the data directory, the repository's own data/
        (which holds the OAuth client and keys even when the data directory is elsewhere),
        the hub user's home, and /proc (no other process is visible; Landlock already keeps
        its files unreadable, but not the existence of /proc/PID)."""
        masked = [paths.data_dir(), paths.REPO_ROOT / "data"]
        home = Path(os.path.expanduser("~")).resolve()
        if home != Path("/"):
            masked.append(home)
        masked.append(PROC)
        return list(dict.fromkeys(masked))

    def with_limits(self, limits: ResourceLimits) -> SpokePolicy:
        return replace(self, limits=limits)


def _minimal(items: list[Path]) -> list[Path]:
    """Drop duplicates and paths already covered by an ancestor in the list."""
    unique = sorted({Path(p) for p in items}, key=lambda p: len(p.parts))
    kept: list[Path] = []
    for path in unique:
        if not any(path.is_relative_to(k) for k in kept):
            kept.append(path)
    return kept
