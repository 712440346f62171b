"""A spoke: one app, confined, serving the hub's requests over one socket.

Runs in a child forked by the zygote. It confines itself first
(``helpers.sandbox.confine``), and only then imports the app's module. It never
talks to anything but the hub; everything the app and its agent need goes
through ``SpokeOperator``. Two requests are served: ``app_request`` (run one
functionality directly, e.g. for another app) and ``query_request`` (handle a
user query with this spoke's own LLM agent and memory).
"""

from __future__ import annotations

import importlib
import socket
import traceback

from helpers.isc.channel import Channel, ChannelClosed, Violation
from helpers.isc.control import Confinement, SpokeProfile
from helpers.isc.messages import (
    AppRequest, AppResponse, ErrorMessage, FinalResponse, MemoryRequest, NoFunctionalityResponse,
    QueryRequest, SpokeReady,
)
from helpers.utilities.errors import SecGPTError
from spoke.spoke_operator import SpokeOperator


def run_spoke(fd: int, confinement: Confinement, profile: SpokeProfile | None, zygote_pid: int) -> int:
    channel = Channel(socket.socket(fileno=fd))
    try:
        from helpers.sandbox.confine import confine
        report = confine(confinement, zygote_pid)
    except Exception as exc:  # noqa: BLE001 - report, then die: never run unconfined
        _try_send(channel, ErrorMessage(code="internal", message=f"sandbox setup failed: {exc}"[:2000]))
        return 71
    functionalities: dict = {}
    if confinement.app_module:
        try:
            from helpers.tools.app_module import app_functions
            module = importlib.import_module(confinement.app_module)
            functionalities = app_functions(module, [f.name for f in profile.functionalities] if profile else [],
                                            profile.settings if profile else {})
        except Exception as exc:  # noqa: BLE001 - app code is untrusted; report what it did
            _try_send(channel, ErrorMessage(
                code="app_error", message=f"app module {confinement.app_module} failed to load: "
                                          f"{type(exc).__name__}: {exc}"[:2000]))
            return 72
    channel.send(SpokeReady(app=confinement.app, sandbox=report))
    return _serve(channel, functionalities, profile)


def _serve(channel: Channel, functionalities: dict, profile: SpokeProfile | None) -> int:
    hub = SpokeOperator(channel, profile.settings if profile else None, profile.app if profile else "")
    while True:
        try:
            message = channel.recv()
        except ChannelClosed:
            return 0
        if isinstance(message, Violation):
            channel.send(ErrorMessage(code=message.code, message=message.detail))
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
    from helpers.llm.convert import history_to_langchain
    from helpers.llm.hub_model import HubChatModel
    from helpers.templates import prompts
    from spoke.agent import execute_plan, run_agent
    from spoke.tools import proxy_tool, spoke_tools

    try:
        stored = hub.request(MemoryRequest(id=hub.next_id(), op="load", kind="history"))
        value = getattr(stored, "value", None)
        history = history_to_langchain(value if isinstance(value, list) else [])
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


def _try_send(channel: Channel, message: ErrorMessage) -> None:
    try:
        channel.send(message)
    except OSError:
        pass
