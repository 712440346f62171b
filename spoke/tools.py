"""Runs in: zygote, spoke.

The tools a spoke's agent gets: its own app's functionalities (run here), one
proxy per other installed functionality (reached through the hub, by name only),
and ``recall_user_data`` (the user's remembered details, under data permission)."""

from __future__ import annotations

import json
from collections.abc import Callable

import jsonschema

from helpers.isc.control import SpokeProfile
from helpers.isc.messages import (
    AppRequest,
    AppResponse,
    ErrorMessage,
    FunctionalityDenialResponse,
    FunctionProbeRequest,
    FunctionProbeResponse,
    MemoryRequest,
    NoFunctionalityResponse,
    ToolSpec,
)
from helpers.llm.agent import AgentTool, local_tool
from helpers.templates import prompts
from helpers.utilities.text import as_text
from spoke.spoke_operator import SpokeOperator

PROXY_PARAMETERS = {"type": "object", "properties": {
    "request": {"type": "object", "description": "The request to send, as the functionality expects it."}},
    "required": ["request"]}


def own_tools(profile: SpokeProfile, functions: dict[str, Callable], hub: SpokeOperator) -> list[AgentTool]:
    tools = []
    for f in profile.functionalities:
        function = functions.get(f.name)
        if function is not None:
            tools.append(local_tool(f.name, f.description, f.request_schema, f.response_schema,
                                    lambda args, fn=function: fn(args, hub)))
    return tools


def proxy_tool(name: str, hub: SpokeOperator) -> AgentTool:
    def run(args: dict) -> str:
        request = args.get("request", args)
        if not isinstance(request, dict):
            return f"Error: the request for {name} must be a JSON object."
        probe = hub.request(FunctionProbeRequest(id=hub.next_id(), functionality=name))
        if not isinstance(probe, FunctionProbeResponse):
            return _explain(name, probe)
        try:
            jsonschema.validate(request, probe.request_schema)
        except jsonschema.ValidationError as exc:
            return (f"Invalid request for {name}: {exc.message}. "
                    f"Its request schema is {json.dumps(probe.request_schema)}")
        reply = hub.request(AppRequest(id=hub.next_id(), functionality=name, request=request))
        if isinstance(reply, AppResponse):
            return as_text(reply.response)
        return _explain(name, reply)

    description = (f"Use the functionality {name} of another app, through SecGPT's hub. "
                   "The user is asked for permission.")
    return AgentTool(ToolSpec(name=name, description=description, parameters=PROXY_PARAMETERS), run)


def recall_tool(hub: SpokeOperator) -> AgentTool:
    def run(args: dict) -> str:
        reply = hub.request(MemoryRequest(id=hub.next_id(), op="load", kind="entities"))
        if isinstance(reply, ErrorMessage):
            return f"Not available: {reply.message}"
        return as_text(reply.value or {})
    return AgentTool(ToolSpec(name=prompts.RECALL_TOOL, description=prompts.RECALL_DESCRIPTION,
                              parameters={"type": "object", "properties": {}}), run)


def _explain(name: str, reply) -> str:
    if isinstance(reply, NoFunctionalityResponse):
        return f"No installed app provides {name}."
    if isinstance(reply, FunctionalityDenialResponse):
        return f"The user did not allow this use of {name}: {reply.reason}"
    if isinstance(reply, ErrorMessage):
        return f"{name} failed: {reply.message}"
    return f"{name} gave an unexpected answer ({reply.type})."


def spoke_tools(profile: SpokeProfile, functions: dict[str, Callable], hub: SpokeOperator) -> list[AgentTool]:
    if profile.kind == "vanilla":
        return []
    own = {f.name for f in profile.functionalities}
    return [*own_tools(profile, functions, hub),
            *(proxy_tool(n, hub) for n in profile.others if n not in own),
            recall_tool(hub)]
