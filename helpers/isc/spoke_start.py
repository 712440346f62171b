"""Runs in: hub, zygote, spoke (in a spoke only its trusted start code, before any app code is imported).

The spoke start protocol: what the hub and a new spoke say on the spoke's own socket
before the spoke serves ``messages.Message``.

The zygote forks a spoke knowing nothing about it but a serial number, so no
app's confinement, profile or settings ever sits in the heap every later spoke
is forked from. The hub then talks to the new spoke directly, in lock step:

    hub   -> spoke  ``confine``         the Confinement the spoke applies to itself
    spoke -> hub    ``spoke_confined``  app name + SandboxReport, sent BEFORE any app code is
                                        imported: the only report the hub records and trusts
    hub   -> spoke  ``load_app``        the SpokeProfile (description, settings, ...)
    spoke -> hub    ``spoke_ready``     the app module loaded; carries no sandbox facts, since
                                        the app's own code ran before it and could have forged it

None of these is in ``messages.Message``: once the spoke serves requests, a start message from
it is a malformed frame to the hub. Every frame is read exactly (header, then payload), never
more, so the ``Channel`` that takes over the socket afterwards starts on a frame boundary.
"""

from __future__ import annotations

import select
import socket
import time
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from helpers.isc.control import Confinement, SpokeProfile
from helpers.isc.framing import DEFAULT_MAX_FRAME, HEADER, encode_frame
from helpers.isc.messages import ErrorMessage, Name, SandboxReport
from helpers.utilities.errors import ProtocolError


class _Start(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class ConfineRequest(_Start):
    """Hub -> new spoke: apply this confinement to yourself, then report."""

    type: Literal["confine"] = "confine"
    confinement: Confinement


class SpokeConfined(_Start):
    """New spoke -> hub, after confinement and before any app code: what it applied."""

    type: Literal["spoke_confined"] = "spoke_confined"
    app: Name
    sandbox: SandboxReport


class LoadRequest(_Start):
    """Hub -> confined spoke: the agent's profile; import the app module now."""

    type: Literal["load_app"] = "load_app"
    profile: SpokeProfile | None = None


class SpokeReady(_Start):
    """Spoke -> hub: the app module loaded. App code ran before this: it proves nothing."""

    type: Literal["spoke_ready"] = "spoke_ready"
    app: Name


StartMessage = Annotated[ConfineRequest | SpokeConfined | LoadRequest | SpokeReady | ErrorMessage,
                         Field(discriminator="type")]
_ADAPTER: TypeAdapter[StartMessage] = TypeAdapter(StartMessage)


def send(sock: socket.socket, message: StartMessage) -> None:
    sock.sendall(encode_frame(message.model_dump_json().encode(), DEFAULT_MAX_FRAME))


def recv(sock: socket.socket, deadline: float) -> StartMessage:
    """One start message. TimeoutError past ``deadline`` (a ``time.monotonic()`` value),
    EOFError if the peer closed, ProtocolError for anything that is not a start message."""
    (size,) = HEADER.unpack(_exactly(sock, HEADER.size, deadline))
    if size > DEFAULT_MAX_FRAME:
        raise ProtocolError(f"start frame of {size} bytes exceeds the {DEFAULT_MAX_FRAME}-byte limit")
    payload = _exactly(sock, size, deadline)
    try:
        return _ADAPTER.validate_json(payload)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "message"
        raise ProtocolError(f"not a start message: {where}: {first['msg']}"[:500]) from None


def rehearse() -> None:
    """Encode and validate one of each start message, all made up (no app's), in a spoke
    forked ahead while it waits: a fork's first validation pages in pydantic's code and
    tables (about half a millisecond here), which then happens before the hub names an app
    rather than while it waits for the spoke."""
    sample = Confinement(app="rehearsal", app_module="rehearsal.app", data_dir="/nonexistent", read_only=["/"],
                         read_write=["/nonexistent"], masked=["/nonexistent"], rlimits={"RLIMIT_AS": 1},
                         uid=None, gid=None, network_namespace=False, seccomp_exceptions=[])
    report = SandboxReport(uid=0, gid=0, rlimits={"RLIMIT_AS": 1}, seccomp=False, landlock_abi=0,
                           mount_namespace=False, network_namespace=False)
    profile = SpokeProfile(kind="app", app="rehearsal", settings={"rehearsal": "-"})
    for message in (ConfineRequest(confinement=sample), SpokeConfined(app="rehearsal", sandbox=report),
                    LoadRequest(profile=profile), SpokeReady(app="rehearsal")):
        _ADAPTER.validate_json(encode_frame(message.model_dump_json().encode())[HEADER.size:])


def _exactly(sock: socket.socket, n: int, deadline: float) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([sock], [], [], remaining)[0]:
            raise TimeoutError("no start message in time")
        try:
            chunk = sock.recv(n - len(buf))
        except (ConnectionResetError, BrokenPipeError):
            chunk = b""
        if not chunk:
            raise EOFError("the peer closed the socket" + (" in the middle of a frame" if buf else ""))
        buf += chunk
    return bytes(buf)


def report_mismatch(confinement: Confinement, report: SandboxReport, landlock_abi: int) -> str | None:
    """Why ``report`` is not what applying ``confinement`` yields on this kernel; None if it is."""
    dropped = confinement.uid is not None
    userns = not dropped and confinement.user_namespace
    expected = {
        "seccomp": True,
        "seccomp_exceptions": list(confinement.seccomp_exceptions),
        "rlimits": confinement.rlimits,
        "landlock_abi": landlock_abi,
        "mount_namespace": dropped or userns,
        "user_namespace": userns,
        "network_namespace": (dropped or userns) and confinement.network_namespace,
    }
    if dropped:
        expected.update(uid=confinement.uid, gid=confinement.gid if confinement.gid is not None else confinement.uid)
    for name, value in expected.items():
        if getattr(report, name) != value:
            return f"{name} is {getattr(report, name)!r}, expected {value!r}"
    if confinement.server is None or report.server is None:
        if (confinement.server is None) != (report.server is None):
            return f"server is {report.server!r}, expected {'a report' if confinement.server else None}"
        return None
    # Its MCP command server's process: the same layers, the execute right only where decided,
    # and the one exec let through by the spoke, which then gave up the power to allow another.
    expected.update(executable=list(confinement.server.executable), exec_once=True)
    for name, value in expected.items():
        if getattr(report.server, name) != value:
            return f"server.{name} is {getattr(report.server, name)!r}, expected {value!r}"
    return None
