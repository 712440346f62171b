"""Runs in: hub, zygote, spoke, vanillagpt (the hub only builds the vanilla spoke's opening, to start its call early).

A small tool-calling agent loop over any ``ChatModel``.

Shared by every spoke (with its model through the hub, ``spoke.hub_model``) and by
VanillaGPT (with the LLM client directly), so the two systems differ only in what each
context holds. It works on the project's own messages; a tool's failure is a result the
model can explain, never a crash of the loop.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jsonschema

from helpers.isc.messages import ChatMessage, ToolCall, ToolSpec
from helpers.llm.interface import ChatModel
from helpers.utilities.text import as_text

MAX_STEPS = 8


@dataclass(frozen=True)
class AgentTool:
    spec: ToolSpec
    run: Callable[[dict], str]


@dataclass
class AgentRun:
    answer: str
    messages: list[ChatMessage]
    tool_calls: list[tuple[str, dict, str]]  # (tool, args, result)


def local_tool(name: str, description: str, request_schema: dict, response_schema: dict,
               function: Callable[[dict], Any]) -> AgentTool:
    """A functionality run in this process, its request and response checked against its schemas."""
    def run(args: dict) -> str:
        try:
            jsonschema.validate(args, request_schema)
        except jsonschema.ValidationError as exc:
            return f"Invalid request for {name}: {exc.message}. Expected: {json.dumps(request_schema)}"
        result = function(args)
        try:
            jsonschema.validate(result, response_schema)
        except jsonschema.ValidationError as exc:
            return f"{name} returned a response that does not match its specification: {exc.message}"
        return as_text(result)
    return AgentTool(ToolSpec(name=name, description=description, parameters=request_schema), run)


def opening(system: str, history: list[ChatMessage], query: str) -> list[ChatMessage]:
    """The conversation an agent starts from: its instructions, the history it was given, the query."""
    return [ChatMessage(role="system", content=system), *history, ChatMessage(role="user", content=query)]


def run_agent(model: ChatModel, system: str, history: list[ChatMessage], query: str,
              tools: list[AgentTool], max_steps: int = MAX_STEPS,
              unknown: Callable[[str], AgentTool] | None = None,
              done: list[tuple[str, dict, str]] | None = None) -> AgentRun:
    """Loop: ask the model, run the tools it calls, until it answers. A call to a tool it was
    not given goes to ``unknown(name)`` if set (a spoke asks the hub), else is an error result.
    ``done`` holds calls already made (plan-directed execution): the conversation starts as if
    the model had made them, so its first turn can simply phrase the answer."""
    by_name = {t.spec.name: t for t in tools}
    specs = [t.spec for t in tools]
    messages = opening(system, history, query)
    calls: list[tuple[str, dict, str]] = list(done or [])
    if calls:
        ids = [f"planned_{i}" for i in range(len(calls))]
        messages.append(ChatMessage(role="assistant", content="", tool_calls=[
            ToolCall(id=i, name=name, args=args) for (name, args, _), i in zip(calls, ids, strict=True)]))
        messages += [ChatMessage(role="tool", content=result, tool_call_id=i)
                     for (_, _, result), i in zip(calls, ids, strict=True)]
    for _ in range(max_steps):
        reply = model.complete(messages, specs)
        messages.append(reply)
        if not reply.tool_calls:
            return AgentRun(reply.content, messages, calls)
        for call in reply.tool_calls:
            tool = by_name.get(call.name) or (unknown(call.name) if unknown else None)
            args = dict(call.args)
            if tool is None:
                result = f"Error: there is no tool named {call.name}."
            else:
                try:
                    result = tool.run(args)
                except Exception as exc:  # noqa: BLE001 - a failing tool is a result the model can explain
                    result = f"Error from {call.name}: {type(exc).__name__}: {exc}"
            calls.append((call.name, args, result))
            messages.append(ChatMessage(role="tool", content=result, tool_call_id=call.id))
    return AgentRun(f"I could not finish this request within {max_steps} steps.", messages, calls)


def execute_plan(steps: list, tools: list[AgentTool], schemas: dict[str, dict]) -> list[tuple[str, dict, str]]:
    """Plan-directed execution: run the planned steps whose input the plan gives in full, in
    order, with the same tools the agent would use (so the same checks and permissions apply).
    Stops at the first step that is not directly executable (no such tool, input invalid, or
    input built from an earlier result, ``<result_k>``): the agent takes over from there, with
    the results in its context, and composes that call itself. Pasting a whole result into an
    input is right for a message body and wrong for a date or a place, and only the model can
    tell which is which."""
    by_name = {t.spec.name: t for t in tools}
    done: list[tuple[str, dict, str]] = []
    for step in steps:
        tool = by_name.get(step.name)
        args = step.input
        if tool is None or not isinstance(args, dict) or "<result_" in json.dumps(args):
            break
        schema = schemas.get(step.name)
        if schema is not None:
            try:
                jsonschema.validate(args, schema)
            except jsonschema.ValidationError:
                break
        result = tool.run(args)
        if result.startswith("Invalid request for "):
            break  # a proxied functionality's schema (known only to the hub) rejected it
        done.append((step.name, args, result))
    return done
