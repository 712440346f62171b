"""Messages and tool specifications as tests write them, in the project's own types."""

from __future__ import annotations

from helpers.isc.messages import ChatMessage, ToolCall, ToolSpec


def system(text: str) -> ChatMessage:
    return ChatMessage(role="system", content=text)


def user(text: str) -> ChatMessage:
    return ChatMessage(role="user", content=text)


def asked(*calls: tuple[str, dict, str], content: str = "") -> ChatMessage:
    """An assistant message making ``calls`` (name, args, id)."""
    return ChatMessage(role="assistant", content=content,
                       tool_calls=[ToolCall(id=i, name=name, args=args) for name, args, i in calls])


def result_of(call: ToolCall, content: str) -> ChatMessage:
    return ChatMessage(role="tool", content=content, tool_call_id=call.id)


def spec(name: str, description: str = "", parameters: dict | None = None) -> ToolSpec:
    return ToolSpec(name=name, description=description,
                    parameters=parameters if parameters is not None else {"type": "object", "properties": {}})
