"""Runs in: zygote, spoke (forked by the zygote; this module's start code runs before any app code).

A spoke: one app, confined, serving the hub's requests over one socket.

The start follows ``helpers.isc.spoke_start``: the spoke reads its confinement
from the hub, confines itself (``helpers.sandbox.confine``), reports what it
applied while no app code has run yet, and only then receives its profile
(settings included) and imports the app's module, from a path that no longer
holds its own writable directory. It never talks to anything but the hub;
everything the app and its agent need goes through ``SpokeOperator``. Two
requests are served: ``app_request`` (run one functionality directly, e.g. for
another app) and ``query_request`` (handle a user query with this spoke's own
LLM agent and memory).
"""

from __future__ import annotations

import importlib
import os
import socket
import sys
import time
import traceback

from helpers.isc import spoke_start
from helpers.isc.channel import Channel, ChannelClosed, Violation
from helpers.isc.control import SpokeProfile
from helpers.isc.messages import (
    AppRequest,
    AppResponse,
    ErrorMessage,
    FinalResponse,
    McpListRequest,
    MemoryRequest,
    NoFunctionalityResponse,
    QueryRequest,
)
from helpers.isc.spoke_start import ConfineRequest, LoadRequest, SpokeConfined, SpokeReady
from helpers.sandbox.confine import Prepared, confine
from helpers.utilities.errors import ProtocolError, SecGPTError
from spoke.mcp_app import McpApp
from spoke.spoke_operator import SpokeOperator

# How long a new spoke waits for each of the hub's start messages (the hub gives up sooner).
START_TIMEOUT = 60.0


def run_spoke(fd: int, zygote_pid: int, prepared: Prepared | None = None) -> int:
    """The spoke program: ``prepared`` is this process's app-independent start, done while it
    waited to be handed this socket (``helpers.sandbox.confine.prepare``)."""
    sock = socket.socket(fileno=fd)
    try:
        confinement = _expect(sock, ConfineRequest).confinement
    except (SecGPTError, OSError, EOFError) as exc:  # the hub gave up on us, or is gone
        _try_send(sock, ErrorMessage(code="bad_message", message=f"spoke start: {exc}"[:2000]))
        return 73
    try:
        report = confine(confinement, zygote_pid, prepared)
        _drop_writable_import_paths(confinement.data_dir)
    except Exception as exc:  # noqa: BLE001 - report, then die: never run unconfined
        _try_send(sock, ErrorMessage(code="internal", message=f"sandbox setup failed: {exc}"[:2000]))
        return 71
    # Reported now, while the only code in this process is the project's own: the hub records
    # this report, never anything the app could say later.
    spoke_start.send(sock, SpokeConfined(app=confinement.app, sandbox=report))
    try:
        profile = _expect(sock, LoadRequest).profile
    except (SecGPTError, OSError, EOFError):
        return 73
    functionalities: dict = {}
    if confinement.app_module:
        try:
            from helpers.tools.app_module import app_functions
            module = importlib.import_module(confinement.app_module)
            functionalities = app_functions(module, [f.name for f in profile.functionalities] if profile else [],
                                            profile.settings if profile else {})
        except Exception as exc:  # noqa: BLE001 - app code is untrusted; report what it did
            _try_send(sock, ErrorMessage(
                code="app_error", message=f"app module {confinement.app_module} failed to load: "
                                          f"{type(exc).__name__}: {exc}"[:2000]))
            return 72
    spoke_start.send(sock, SpokeReady(app=confinement.app))
    return _serve(Channel(sock), functionalities, profile)


def _expect(sock: socket.socket, kind: type):
    message = spoke_start.recv(sock, time.monotonic() + START_TIMEOUT)
    if not isinstance(message, kind):
        raise ProtocolError(f"expected {kind.model_fields['type'].default}, got {message.type}")
    return message


def _drop_writable_import_paths(data_dir: str) -> None:
    """Import app code only from read-only places: never from the working directory (the
    app's own data directory, where it can write a module that shadows another import).
    The directory listings the zygote cached were already dropped before the fork was handed
    over (``zygote``), so the first import lists each directory afresh, in the spoke's view."""
    here = os.getcwd()
    writable = (os.path.abspath(data_dir), here)
    sys.path[:] = [p for p in sys.path if p not in ("", ".") and not any(
        os.path.abspath(p) == w or os.path.abspath(p).startswith(w + os.sep) for w in writable)]


def _serve(channel: Channel, functionalities: dict, profile: SpokeProfile | None) -> int:
    hub = SpokeOperator(channel, profile.settings if profile else None, profile.app if profile else "")
    mcp = McpApp(profile, hub) if profile is not None and profile.mcp is not None else None
    while True:
        try:
            message = channel.recv()
        except ChannelClosed:
            if mcp is not None:
                mcp.close()
            return 0
        if mcp is not None and isinstance(message, (AppRequest, QueryRequest)):
            found = mcp.functionalities()  # connected (and its pin checked) on first use
            if isinstance(found, ErrorMessage):
                channel.send(found.model_copy(update={"id": message.id}))
                continue
            functionalities = found
        if isinstance(message, Violation):
            channel.send(ErrorMessage(code=message.code, message=message.detail))
        elif isinstance(message, McpListRequest) and mcp is not None:
            channel.send(mcp.listing(message.id))
        elif isinstance(message, AppRequest):
            channel.send(_run_functionality(message, functionalities, hub))
        elif isinstance(message, QueryRequest) and profile is not None:
            channel.send(_answer_query(message, profile, functionalities, hub))
        else:
            channel.send(ErrorMessage(id=getattr(message, "id", None), code="unexpected_message",
                                      message=f"this spoke does not accept {message.type}"))


def _run_functionality(message: AppRequest, functionalities: dict, hub: SpokeOperator):
    handler = functionalities.get(message.functionality)
    if handler is None:
        return NoFunctionalityResponse(id=message.id, functionality=message.functionality)
    try:
        result = handler(dict(message.request), hub)
        return AppResponse(id=message.id, functionality=message.functionality, response=result)
    except Exception as exc:  # noqa: BLE001
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        return ErrorMessage(id=message.id, code="app_error", message=detail[:4000])


def _answer_query(message: QueryRequest, profile: SpokeProfile, functionalities: dict, hub: SpokeOperator):
    from helpers.llm.agent import execute_plan, run_agent
    from helpers.llm.interface import chat_history
    from helpers.templates import prompts
    from spoke.hub_model import HubChatModel
    from spoke.tools import proxy_tool, spoke_tools

    try:
        stored = hub.request(MemoryRequest(id=hub.next_id(), op="load", kind="history"))
        value = getattr(stored, "value", None)
        history = chat_history(value if isinstance(value, list) else [])
        if message.results or not message.tools:
            # Strict mode: the hub ran this app's planned steps; its LLM only phrases the results
            # for the user, with no tool to call (the hub would refuse any call anyway).
            system = (prompts.phrase_system(profile.app, profile.description, profile.annotation) if message.results
                      else prompts.spoke_system(profile.app, profile.description, profile.annotation, []))
            done = [(c.name, c.input if isinstance(c.input, dict) else {}, c.result) for c in message.results]
            run = run_agent(HubChatModel(operator=hub), system, history, message.query, [], done=done)
        else:
            if profile.kind == "vanilla":
                system = prompts.VANILLA_SPOKE
            elif profile.kind == "routing":
                system = prompts.routing_system(message.plan)
            else:
                system = prompts.spoke_system(profile.app, profile.description, profile.annotation, message.plan)
            tools = spoke_tools(profile, functionalities, hub)
            schemas = {f.name: f.request_schema for f in profile.functionalities}
            done = execute_plan(message.plan, tools, schemas) if message.plan else []
            run = run_agent(HubChatModel(operator=hub), system, history, message.query, tools,
                            unknown=None if profile.kind == "vanilla" else (lambda name: proxy_tool(name, hub)),
                            done=done)
        hub.request(MemoryRequest(id=hub.next_id(), op="save", kind="history", value=[
            {"role": "user", "content": message.query}, {"role": "assistant", "content": run.answer}]))
        return FinalResponse(id=message.id, text=run.answer[:500_000])
    except SecGPTError as exc:
        return ErrorMessage(id=message.id, code="llm_error", message=str(exc)[:4000])
    except Exception as exc:  # noqa: BLE001
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        return ErrorMessage(id=message.id, code="app_error", message=detail[:4000])


def _try_send(sock: socket.socket, message: ErrorMessage) -> None:
    try:
        spoke_start.send(sock, message)
    except OSError:
        pass
