"""Helpers for the tests that run code in a real spoke or look into a process from outside."""

from __future__ import annotations

import ctypes
import json
import os
import select
import signal
import time
from collections.abc import Callable
from pathlib import Path

from helpers.sandbox.app_spec import AppSpec
from helpers.sandbox.confine import Prepared
from helpers.sandbox.sandbox import SANDBOX_APP
from hub.broker import SpokeBroker


def is_root() -> bool:
    return os.geteuid() == 0


def sandbox_code(hub: SpokeBroker, code: str, timeout: float = 20.0, **app_kwargs):
    """Run ``code`` as the sandbox app in a new spoke; returns the outcome."""
    spoke = hub.start(AppSpec(name=app_kwargs.pop("name", "sandbox"), module=SANDBOX_APP.module, **app_kwargs))
    try:
        return hub.call(spoke, "run_code", {"code": code}, timeout=timeout)
    finally:
        if spoke.alive:
            hub.stop(spoke)


def memory_contains(pid: int, needle: bytes) -> bool:
    """Whether ``needle`` is anywhere in the readable memory of process ``pid`` (needs root)."""
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for line in maps:
            start, end = (int(x, 16) for x in line.split()[0].split("-"))
            if "r" not in line.split()[1] or end - start > 1 << 30:
                continue
            try:
                mem.seek(start)
                if needle in mem.read(end - start):
                    return True
            except (OSError, ValueError, OverflowError):
                continue
    return False


def in_child(work: Callable[[], object], timeout: float = 30.0):
    """``work()`` run in a forked child of the test process; returns its value (JSON), or raises
    AssertionError with the child's exception. What the child does to itself (a filter, a
    namespace, a function patched) ends with it."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            os.close(read_end)
            try:
                data = json.dumps({"value": work()}).encode()
            except BaseException as exc:  # noqa: BLE001 - reported to the test
                data = json.dumps({"error": f"{type(exc).__name__}: {exc}"}).encode()
            while data:
                data = data[os.write(write_end, data):]
        finally:
            os._exit(0)
    os.close(write_end)
    deadline, received = time.monotonic() + timeout, bytearray()
    try:
        while chunk := _read_until(read_end, deadline):
            received += chunk
    except TimeoutError:
        os.kill(pid, signal.SIGKILL)
        raise
    finally:
        os.close(read_end)
        os.waitpid(pid, 0)
    outcome = json.loads(received or b'{"error": "the child died without an answer"}')
    if "error" in outcome:
        raise AssertionError(f"in the child: {outcome['error']}")
    return outcome["value"]


def _read_until(fd: int, deadline: float) -> bytes:
    if not select.select([fd], [], [], max(deadline - time.monotonic(), 0))[0]:
        raise TimeoutError("the child did not finish in time")
    return os.read(fd, 65536)


def write_code_app(base: Path, name: str, functionality: str = "run_code", module: str = SANDBOX_APP.module,
                   limits: dict | None = None) -> None:
    """Install under ``base`` (manifests/, specifications/) an app ``name`` whose one
    functionality runs the Python code it is given (the sandbox app's code under another name),
    so a test can make an app die, hang or call back on demand."""
    (base / "manifests").mkdir(parents=True, exist_ok=True)
    (base / "specifications").mkdir(exist_ok=True)
    (base / "manifests" / f"{name}.json").write_text(json.dumps({
        "name": name, "description": f"{name} runs a piece of Python code.", "module": module,
        "functionalities": {functionality: "Run a piece of Python code."}, **({"limits": limits} if limits else {})}))
    (base / "specifications" / f"{functionality}.json").write_text(json.dumps({
        "type": "object", "required": [functionality],
        "properties": {functionality: {
            "type": "object", "required": ["request", "response"],
            "properties": {"request": {"type": "object", "properties": {"code": {"type": "string"}},
                                       "required": ["code"]},
                           "response": {"type": "object"}}}}}))


def report_handed(fd: int, zygote_pid: int, prepared: object) -> int:
    """A spoke program for tests (``tests.sandbox_helpers:report_handed``): writes on its channel
    what each of its descriptors is, then waits until the other end closes."""
    held = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            held[name] = os.readlink(f"/proc/self/fd/{name}")
        except OSError:  # the listing's own descriptor, closed by now
            continue
    os.write(fd, json.dumps({"pid": os.getpid(), "fds": held}).encode())
    os.read(fd, 1)
    return 0


def children_of(pid: int) -> set[int]:
    """The live processes whose parent is ``pid``."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.add(int(entry))
    return found


def blocked_in(pid: int) -> int | None:
    """The system call ``pid`` is blocked in (None: running, gone, or not ours to read)."""
    try:
        with open(f"/proc/{pid}/syscall") as f:
            first = f.read().split()[0]
    except (OSError, IndexError):
        return None
    return int(first) if first.isdigit() else None


def descriptors(pid: int) -> dict[int, str]:
    """What each open descriptor of ``pid`` is (``readlink`` of /proc/PID/fd/N)."""
    held = {}
    for name in os.listdir(f"/proc/{pid}/fd"):
        try:
            held[int(name)] = os.readlink(f"/proc/{pid}/fd/{name}")
        except OSError:
            continue
    return held


def report_prepared(fd: int, zygote_pid: int, prepared: Prepared) -> int:
    """A spoke program for tests (``tests.sandbox_helpers:report_prepared``): writes on its channel
    the zygote's pid it was given, its parent's now, whether its preparation failed and whether it
    is dumpable, then waits until the other end closes."""
    dumpable = ctypes.CDLL(None).prctl(3, 0, 0, 0, 0)  # PR_GET_DUMPABLE
    os.write(fd, json.dumps({"pid": os.getpid(), "zygote_pid": zygote_pid, "ppid": os.getppid(),
                             "error": prepared.error, "dumpable": dumpable}).encode())
    os.read(fd, 1)
    return 0
