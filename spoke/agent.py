"""A small tool-calling agent loop over any LangChain chat model with ``bind_tools``.

Used by every spoke (with the hub-brokered model) and by VanillaGPT (with the
hub's model directly), so the two systems differ only in what each context holds.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jsonschema
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage

from helpers.isc.messages import ToolSpec
from helpers.llm.convert import tool_to_openai
from helpers.utilities.text import as_text

MAX_STEPS = 8


@dataclass(frozen=True)
class AgentTool:
    spec: ToolSpec
    run: Callable[[dict], str]


@dataclass
class AgentRun:
    answer: str
    messages: list[BaseMessage]
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


def run_agent(model: BaseChatModel, system: str, history: list[BaseMessage], query: str,
              tools: list[AgentTool], max_steps: int = MAX_STEPS,
              unknown: Callable[[str], AgentTool] | None = None,
              done: list[tuple[str, dict, str]] | None = None) -> AgentRun:
    """Loop: ask the model, run the tools it calls, until it answers. A call to a tool it was
    not given goes to ``unknown(name)`` if set (a spoke asks the hub), else is an error result.
    ``done`` holds calls already made (plan-directed execution): the conversation starts as if
    the model had made them, so its first turn can simply phrase the answer."""
    by_name = {t.spec.name: t for t in tools}
    bound = model.bind_tools([tool_to_openai(t.spec) for t in tools]) if tools else model
    messages: list[BaseMessage] = [SystemMessage(content=system), *history, HumanMessage(content=query)]
    calls: list[tuple[str, dict, str]] = list(done or [])
    if calls:
        ids = [f"planned_{i}" for i in range(len(calls))]
        messages.append(AIMessage(content="", tool_calls=[
            {"name": name, "args": args, "id": i, "type": "tool_call"} for (name, args, _), i in zip(calls, ids)]))
        messages += [ToolMessage(content=result, tool_call_id=i) for (_, _, result), i in zip(calls, ids)]
    for _ in range(max_steps):
        reply = bound.invoke(messages)
        if not isinstance(reply, AIMessage):
            reply = AIMessage(content=str(getattr(reply, "content", reply)))
        messages.append(reply)
        if not reply.tool_calls:
            return AgentRun(as_text(reply.content) if reply.content else "", messages, calls)
        for call in reply.tool_calls:
            tool = by_name.get(call["name"]) or (unknown(call["name"]) if unknown else None)
            args = dict(call.get("args") or {})
            if tool is None:
                result = f"Error: there is no tool named {call['name']}."
            else:
                try:
                    result = tool.run(args)
                except Exception as exc:  # noqa: BLE001 - a failing tool is a result the model can explain
                    result = f"Error from {call['name']}: {type(exc).__name__}: {exc}"
            calls.append((call["name"], args, result))
            messages.append(ToolMessage(content=result, tool_call_id=call.get("id") or ""))
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
