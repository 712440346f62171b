"""Runs in: hub, zygote, spoke, vanillagpt.

Messages between the hub's launcher and the zygote, and the two records the hub hands a
new spoke: its ``Confinement`` and its agent's ``SpokeProfile``.

Separate from ``messages.Message``: a spoke can never send or receive these. The zygote
is told nothing about an app: a spawn request is a serial number, the spoke program's
entry point (the same for every app) and the spoke's socket (SCM_RIGHTS), so no app's
confinement, profile or settings ever passes through the heap every later spoke is
forked from. The hub sends the confinement and the profile on the
spoke's own socket (``spoke_start``); the zygote and the new spoke only carry them out.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter

from helpers.isc.messages import Name
from helpers.tools.mcp.link import McpServer

CONTROL_FD = 3  # where the zygote finds its control socket (the launcher puts it there)


class _Ctl(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Confinement(_Ctl):
    """Exactly what a new spoke applies to itself, in this order: mount view,
    rlimits, identity, Landlock, seccomp."""

    app: Name
    app_module: str  # "" for a spoke without app code (routing, vanilla)
    data_dir: str
    read_only: list[str]
    read_write: list[str]
    masked: list[str]
    rlimits: dict[str, int]
    uid: int | None  # None: the hub is not root, keep the identity
    gid: int | None
    network_namespace: bool
    # Hub not root: build the same mount view and namespaces inside a new user namespace
    # (False where the system forbids unprivileged user namespaces: the launcher warns).
    user_namespace: bool = False
    seccomp_exceptions: list[str] = []  # per-app, from the manifest; names in policy.POLICY_EXCEPTIONS


class SpokePreparation(_Ctl):
    """What every spoke of one launcher does to itself before it is told its app: the same for
    all apps, so a spoke may do it while it waits, forked ahead of time (``confine.prepare``).
    A confinement asks for exactly this (``preparation_for``), or the spoke refuses it."""

    user_namespace: bool  # enter a user namespace mapped to the hub user's own uid (hub not root)
    network_namespace: bool  # unshare private, empty network and IPC namespaces


def preparation_for(confinement: Confinement) -> SpokePreparation:
    """The app-independent part of ``confinement``: what ``confine`` does before the mount view."""
    user = confinement.uid is None and confinement.user_namespace
    return SpokePreparation(user_namespace=user,
                            network_namespace=(confinement.uid is not None or user) and confinement.network_namespace)


class FunctionalityProfile(_Ctl):
    name: Name
    description: str
    request_schema: dict[str, Any]
    response_schema: dict[str, Any]


class SpokeProfile(_Ctl):
    """What the spoke's agent knows: its own app only. Other apps appear by name alone."""

    kind: Literal["app", "routing", "vanilla"]
    app: Name
    description: str = ""
    annotation: str | None = None
    functionalities: list[FunctionalityProfile] = []
    others: list[Name] = []
    settings: dict[str, str] = {}
    mcp: McpServer | None = None  # an MCP app: how its spoke reaches its server, and the pin


# A module the zygote imports by name, and the function a new spoke runs ("package.module:function").
ModuleName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$",
                                              max_length=200)]
Entry = Annotated[str, StringConstraints(
    pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$", max_length=200)]


class ZygoteStart(_Ctl):
    """The hub's first word to a new zygote: which trusted modules to import once, before any
    fork. The zygote knows no program of its own (helpers/ never imports spoke/): the hub names it."""

    type: Literal["zygote_start"] = "zygote_start"
    preload: list[ModuleName]
    # Each spoke's app-independent start (the fork, the namespaces, the default seccomp
    # program), done by ``pool`` children kept forked ahead, waiting to be handed a spawn request.
    preparation: SpokePreparation
    pool: int = Field(default=1, ge=0, le=8)


class SpawnRequest(_Ctl):
    """Fork a spoke on the socket passed with this frame and run ``entry(fd, zygote_pid)`` in it.
    The entry is the spoke program, the same for every app: nothing app-specific, by design."""

    type: Literal["spawn"] = "spawn"
    serial: int
    entry: Entry


class Spawned(_Ctl):
    type: Literal["spawned"] = "spawned"
    serial: int
    pid: int


class SpokeExited(_Ctl):
    type: Literal["exited"] = "exited"
    pid: int
    exit_code: int | None
    signal: int | None


class ZygoteReady(_Ctl):
    type: Literal["zygote_ready"] = "zygote_ready"
    pid: int
    preload_ms: float


ControlMessage = Annotated[ZygoteStart | SpawnRequest | Spawned | SpokeExited | ZygoteReady,
                           Field(discriminator="type")]
CONTROL_ADAPTER: TypeAdapter[ControlMessage] = TypeAdapter(ControlMessage)
