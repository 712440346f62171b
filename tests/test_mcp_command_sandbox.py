"""An MCP server given as a command runs as its own confined process next to its app's spoke
(helpers/sandbox/server_process.py): it answers the spoke's MCP client through its pipes, and
what it tries from inside its own process is refused: running another program (a shell, the
dynamic loader with a shell as its argument, its own binary again), a new process, an inet
socket, the hub's data, a signal or a trace to its spoke or the hub, its own limits or its spoke's.

Each attack also runs with the layers that refuse it removed (in a child of the test that
confines itself as a spoke would, with those layers patched out; as root, "view" also keeps
root's identity and capabilities): it then works, so the refusal is the layers' doing. The
report the server's process measures is checked by the hub: a skipped layer refuses the spoke."""

from __future__ import annotations

import contextlib
import io
import os
import select
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pyseccomp as sc
import pytest

from helpers.configs import paths
from helpers.isc import spoke_start
from helpers.isc.messages import SandboxReport
from helpers.sandbox import app_dirs, confine, landlock, seccomp, server_process
from helpers.sandbox.sandbox import SANDBOX_APP
from helpers.utilities.errors import SandboxError
from tests.mcp_command_helpers import FIXTURE_SERVER, call_server, client_code, command_app
from tests.sandbox_helpers import in_child

CANARY = "sk-canary-hub-data-5e0f1d"
LOADER = os.path.realpath("/lib64/ld-linux-x86-64.so.2")
SERVER_BINARY = os.path.realpath(sys.executable)
WRITE_MARKER = "open({marker!r}, 'w').write('pwned')"


def _exec(program: str, *args: str) -> str:
    return f"import os\nos.execv({program!r}, {[program, *args]!r})"


@dataclass(frozen=True)
class Attack:
    code: str  # run by the server's ``run`` tool; {marker}, {secret}, {hub} filled in
    refused: str  # how the answer starts when refused
    control: tuple[str, ...]  # the layers whose removal lets it through (REMOVE)
    works: str = "ok"  # how the answer starts when it worked ("marker": the marker file was written)


SHELL_WRITES_MARKER = ("-c", "echo pwned > {marker}")
ATTACKS = {
    "exec_a_shell": Attack(_exec("/bin/sh", *SHELL_WRITES_MARKER), "OSError: [Errno 38]",
                           ("supervisor", "execute"), works="marker"),
    "exec_a_shell_through_the_loader": Attack(_exec(LOADER, "/bin/sh", *SHELL_WRITES_MARKER), "OSError: [Errno 38]",
                                              ("supervisor",), works="marker"),
    "exec_its_own_binary_again": Attack(_exec(SERVER_BINARY, "-c", WRITE_MARKER), "OSError: [Errno 38]",
                                        ("supervisor",), works="marker"),
    "fork": Attack("import os\npid = os.fork()\nif pid == 0:\n    os._exit(0)\nos.waitpid(pid, 0)\nresult = 'forked'",
                   "PermissionError", ("seccomp",)),
    "open_an_inet_socket": Attack("import socket\nsocket.socket(socket.AF_INET, socket.SOCK_STREAM).close()",
                                  "PermissionError", ("seccomp",)),
    "read_the_hubs_data": Attack("result = open({secret!r}).read()", "FileNotFoundError", ("landlock", "view")),
    "signal_its_spoke": Attack("import os, signal\nos.kill(os.getppid(), signal.SIGCONT)", "PermissionError",
                               ("seccomp", "landlock")),
    "signal_the_hub": Attack("import os, signal\nos.kill({hub}, signal.SIGCONT)", "PermissionError",
                             ("seccomp", "landlock", "view")),
    "trace_its_spoke": Attack(
        "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"
        "if libc.ptrace(0x4206, os.getppid(), 0, 0) != 0:  # PTRACE_SEIZE\n"
        "    raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))",
        "PermissionError", ("seccomp", "landlock", "dumpable", "view")),
    "lower_its_spokes_limits": Attack(
        "import os, resource\nresource.prlimit(os.getppid(), resource.RLIMIT_CORE, (0, 0))", "PermissionError",
        ("seccomp",)),
    # The CPU limit's soft value sits a grace second under the hard one (SIGXCPU, then SIGKILL):
    # the one raise the kernel would allow without a capability (the others need CAP_SYS_RESOURCE).
    "raise_its_own_limits": Attack(
        "import resource\nsoft, hard = resource.getrlimit(resource.RLIMIT_CPU)\n"
        "resource.prlimit(0, resource.RLIMIT_CPU, (hard, hard))", "PermissionError", ("seccomp",)),
}
EXECS = [name for name, attack in ATTACKS.items() if attack.works == "marker"]


def _fill(attack: Attack, data_dir: Path, app_dir: Path) -> str:
    return attack.code.format(marker=str(app_dir / "pwned"), secret=str(data_dir / "env_variables.json"),
                              hub=os.getpid())


# --- the layers a control removes, in the child that confines itself (inherited by the server) ----

def _supervised_filter_allows_exec() -> None:
    build = seccomp.build_filter

    def build_filter(own_pid: int, exceptions: object = (), supervised: bool = False) -> sc.SyscallFilter:
        built = build(own_pid, exceptions)  # type: ignore[arg-type]
        if supervised:
            seccomp._add(built, sc.ALLOW, "execve")
        return built
    seccomp.build_filter = build_filter  # type: ignore[assignment]


def _server_filter_allows_everything() -> None:
    build = seccomp.build_filter

    def build_filter(own_pid: int, exceptions: object = (), supervised: bool = False) -> sc.SyscallFilter:
        if not supervised:
            return build(own_pid, exceptions)  # type: ignore[arg-type]
        permissive = sc.SyscallFilter(defaction=sc.ALLOW)
        seccomp._add(permissive, sc.NOTIFY, "execve")  # its start still supervised
        return permissive
    seccomp.build_filter = build_filter  # type: ignore[assignment]


def _execute_everywhere() -> None:
    restrict = landlock.restrict
    landlock.restrict = lambda read_only, read_write, execute=None: restrict(read_only, read_write)  # type: ignore


def _no_landlock() -> None:
    landlock.restrict = lambda *args, **kwargs: 0  # type: ignore


def _no_landlock_for_the_server() -> None:
    restrict = landlock.restrict
    landlock.restrict = lambda read_only, read_write, execute=None: (  # type: ignore
        0 if execute else restrict(read_only, read_write, execute))


def _dumpable() -> None:
    prctl = confine._prctl
    confine._prctl = lambda option, value: None if option == confine.PR_SET_DUMPABLE else prctl(option, value)


REMOVE = {"supervisor": _supervised_filter_allows_exec, "seccomp": _server_filter_allows_everything,
          "execute": _execute_everywhere, "landlock": _no_landlock, "server_landlock": _no_landlock_for_the_server,
          "dumpable": _dumpable,
          "view": lambda: None}  # "view": a spec change (below), no patch


def _in_confined_child(launcher, calls: list[tuple[str, dict]], remove: tuple[str, ...] = (),
                       wait_for: Path | None = None) -> tuple:
    """Confine a child of the test as the app's spoke would (rlimits but one left out: this process
    is larger than a spoke), with the layers ``remove`` taken out; its client then makes ``calls``
    to its server, and the child waits (a while) for ``wait_for`` to exist: a program the server
    ran in its place dies with the child. Returns the report, why the hub would refuse it (None:
    accepted), the findings."""
    policy = command_app().policy()
    changes: dict[str, object] = {"rlimits": {"RLIMIT_CPU": 600}}
    if "view" in remove:  # no mount view, no identity of its own (as root: root's capabilities kept)
        changes.update(uid=None, gid=None, user_namespace=False)
    spec = launcher.confinement(policy, SANDBOX_APP.module).model_copy(update=changes)
    app_dirs.prepare_app_dir(policy.data_dir, None if spec.uid is None else (spec.uid, spec.gid))
    parent = os.getpid()

    def run() -> dict:
        for layer in remove:
            REMOVE[layer]()
        report = confine.confine(spec, parent)
        scope: dict[str, object] = {}
        with contextlib.redirect_stdout(io.StringIO()):
            exec(client_code(calls, read_timeout=20), scope)  # noqa: S102 - the spoke's client code
        deadline = time.monotonic() + 30
        while wait_for is not None and not wait_for.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        return {"report": report.model_dump(mode="json"), "findings": scope["findings"]}
    outcome = in_child(run, timeout=90)
    report = SandboxReport.model_validate(outcome["report"])
    return report, spoke_start.report_mismatch(spec, report, launcher.landlock_abi), outcome["findings"]


def _plant_secret(data_dir: Path) -> None:
    secret = data_dir / "env_variables.json"
    secret.write_text(f'{{"OPENAI_API_KEY": "{CANARY}"}}')
    secret.chmod(0o644)  # the layers are under test, not the file's mode


# --- it runs, confined, and answers through its pipes -------------------------------------------

def test_the_command_server_answers_through_its_pipes(hub, data_dir):
    spoke = hub.start(command_app())
    server = spoke.process.sandbox.server
    assert server is not None and server.exec_once and server.seccomp
    assert server.landlock_abi == landlock.abi_version()
    assert server.executable[0] == SERVER_BINARY and LOADER in server.executable
    found = call_server(hub, spoke, [("add", {"a": 2, "b": 3}),
                                     ("run", {"code": "import sys\nprint('to-the-log', file=sys.stderr, flush=True)"})])
    assert found["tools"] == ["add", "run"] and found["answers"][0] == "5"
    assert found["pid"] == server.pid
    log = paths.app_data_dir("mcpcmd") / server_process.LOG_NAME
    assert "to-the-log" in log.read_text()  # its stderr, in the app's own directory


def test_the_pipes_are_taken_once(hub):
    spoke = hub.start(command_app())
    code = ("from helpers.sandbox import server_process\n"
            "print(server_process.take() is not None, server_process.take() is None)")
    assert hub.call(spoke, "run_code", {"code": code}).response["stdout"].split() == ["True", "True"]


def test_an_app_without_a_server_has_none(hub):
    spoke = hub.start(command_app().__class__(name="plain", module=SANDBOX_APP.module))
    assert spoke.process.sandbox.server is None
    code = "from helpers.sandbox import server_process\nprint(server_process.take())"
    assert hub.call(spoke, "run_code", {"code": code}).response["stdout"].strip() == "None"


def test_the_server_dies_with_its_spoke(hub):
    spoke = hub.start(command_app())
    pid = spoke.process.sandbox.server.pid
    pidfd = os.pidfd_open(pid)
    try:
        hub.stop(spoke)
        assert select.select([pidfd], [], [], 10)[0], "the server outlived its spoke"
    finally:
        os.close(pidfd)


# --- each attack from inside the server: refused; with its layers removed: it works -------------

def test_every_attack_is_refused_from_a_real_spoke(hub, data_dir):
    _plant_secret(data_dir)
    spoke = hub.start(command_app())
    app_dir = paths.app_data_dir("mcpcmd")
    calls = [("run", {"code": _fill(attack, data_dir, app_dir)}) for attack in ATTACKS.values()]
    found = call_server(hub, spoke, [*calls, ("add", {"a": 1, "b": 1})])
    for (name, attack), answer in zip(ATTACKS.items(), found["answers"][:-1], strict=True):
        assert answer.startswith(attack.refused), f"{name}: {answer}"
    assert found["answers"][-1] == "2"  # the server is still the one it was, and serves
    assert not (app_dir / "pwned").exists()
    assert spoke.alive


@pytest.mark.parametrize("name", ATTACKS)
def test_each_attack_is_refused_and_works_without_its_layers(launcher, data_dir, name):
    attack = ATTACKS[name]
    _plant_secret(data_dir)
    app_dir = paths.app_data_dir("mcpcmd")
    marker = app_dir / "pwned"
    code = _fill(attack, data_dir, app_dir)
    report, refusal, found = _in_confined_child(launcher, [("run", {"code": code})])
    assert refusal is None and found["answers"][0].startswith(attack.refused)
    assert not marker.exists()
    _, _, found = _in_confined_child(launcher, [("run", {"code": code})], remove=attack.control,
                                     wait_for=marker if attack.works == "marker" else None)
    if attack.works == "marker":
        log = (app_dir / server_process.LOG_NAME).read_text()[-1500:]
        assert marker.exists() and marker.read_text().strip() == "pwned", (found["answers"], log)
    else:
        assert found["answers"][0].startswith("ok"), found["answers"]
    if name == "read_the_hubs_data":
        assert CANARY in found["answers"][0]


def test_landlock_alone_stops_a_shell_but_not_the_loader(launcher, data_dir):
    """Why the supervisor: with execve left open after the start, Landlock's execute right still
    refuses /bin/sh, but the dynamic loader, which it must allow, runs the shell for the server."""
    app_dir = paths.app_data_dir("mcpcmd")
    shell = _fill(ATTACKS["exec_a_shell"], data_dir, app_dir)
    loader = _fill(ATTACKS["exec_a_shell_through_the_loader"], data_dir, app_dir)
    report, refusal, found = _in_confined_child(launcher, [("run", {"code": shell}), ("run", {"code": loader})],
                                                remove=("supervisor",), wait_for=app_dir / "pwned")
    assert found["answers"][0].startswith("PermissionError: [Errno 13]")  # Landlock: no execute right
    assert (app_dir / "pwned").read_text().strip() == "pwned"
    assert not report.server.exec_once and refusal == "server.exec_once is False, expected True"


# --- the report is measured, and checked ----------------------------------------------------------

SKIPPED = {
    "exec_once": ("supervisor", False),
    "landlock_abi": ("server_landlock", 0),
}


@pytest.mark.parametrize("field", SKIPPED)
def test_a_skipped_server_layer_is_reported_and_refused(launcher, data_dir, field):
    if field == "landlock_abi" and landlock.abi_version() == 0:
        pytest.skip("this kernel has no Landlock")
    layer, value = SKIPPED[field]
    report, refusal, _ = _in_confined_child(launcher, [])
    assert refusal is None  # the control: every layer, accepted
    report, refusal, _ = _in_confined_child(launcher, [], remove=(layer,))
    assert getattr(report.server, field) == value
    assert refusal is not None and refusal.startswith(f"server.{field} is {value!r}")


def test_a_missing_server_report_is_refused(launcher, data_dir):
    spec = launcher.confinement(command_app().policy(), SANDBOX_APP.module)
    report, refusal, _ = _in_confined_child(launcher, [])
    assert refusal is None  # the control
    spec = spec.model_copy(update={"rlimits": report.rlimits})
    assert spoke_start.report_mismatch(spec, report, launcher.landlock_abi) is None
    assert spoke_start.report_mismatch(spec, report.model_copy(update={"server": None}),
                                       launcher.landlock_abi).startswith("server is None")


# --- what the hub decides before any process starts ----------------------------------------------

@pytest.mark.parametrize("argv, says", [
    (("python3", "server.py"), "absolute path"),
    (("/nonexistent/server",), "cannot be read"),
    (("{tmp}/data.txt",), "not an executable file"),
    (("{tmp}/data.sh",), "neither an ELF binary nor a #! script"),
])
def test_a_bad_command_is_refused_with_its_fix(tmp_path, argv, says):
    (tmp_path / "data.txt").write_text("plain")
    (tmp_path / "data.sh").write_text("echo no interpreter named")
    (tmp_path / "data.sh").chmod(0o755)
    argv = tuple(word.format(tmp=tmp_path) for word in argv)
    with pytest.raises(SandboxError, match=says):
        server_process.plan(argv, {}, tmp_path, [tmp_path])


def test_a_script_names_its_interpreter(tmp_path):
    script = tmp_path / "server"
    script.write_text("#!/usr/bin/env python3\nprint('hi')\n")
    script.chmod(0o755)
    with pytest.raises(SandboxError, match=r"name its interpreter in the command"):
        server_process.executables(str(script))
    script.write_text(f"#!{sys.executable} -u\nprint('hi')\n")  # the control: a named interpreter
    assert server_process.executables(str(script)) == [str(script), SERVER_BINARY, LOADER]


def test_a_server_the_app_can_write_is_refused(tmp_path):
    binary = tmp_path / "server"
    binary.write_bytes(Path(SERVER_BINARY).read_bytes()[:4096])
    binary.chmod(0o755)
    with pytest.raises(SandboxError, match="a place apps can write"):
        server_process.plan((str(binary),), {}, tmp_path, [tmp_path])


def test_the_environment_is_the_servers_own(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", CANARY)
    planned = server_process.plan(("/bin/true",), {"TZ": "UTC"}, tmp_path, [])
    assert CANARY not in planned.env.values() and planned.env["TZ"] == "UTC"
    assert planned.env["HOME"] == str(tmp_path) and planned.log == str(tmp_path / server_process.LOG_NAME)
    assert FIXTURE_SERVER.exists()
