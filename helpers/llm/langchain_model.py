"""Runs in: hub, vanillagpt.

The one adapter between the project's message types (ChatMessage, ToolSpec) and LangChain's.

``LangChainModel`` wraps any LangChain chat model (OpenAI, Anthropic, Google, Ollama, ...:
whatever ``helpers.llm.models`` built) as a ``ChatModel``: it binds the tools it is given,
converts the messages in and the reply out. Nothing else in the project converts between the
two, and besides the model factory nothing else imports LangChain's message types.

Must never: let a LangChain message or a provider's payload out; pass on a reply that is not a
valid ChatMessage.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from pydantic import SecretStr, ValidationError

from helpers.isc.messages import ChatMessage, ToolCall, ToolSpec
from helpers.llm.interface import ChatModel
from helpers.utilities.errors import LLMError


class LangChainModel(ChatModel):
    def __init__(self, model: BaseChatModel) -> None:
        self.model = model

    def complete(self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec] = ()) -> ChatMessage:
        runnable = self.model.bind_tools([tool_to_openai(t) for t in tools]) if tools else self.model
        reply = runnable.invoke([to_langchain(m) for m in messages])
        if not isinstance(reply, AIMessage):
            raise LLMError(f"the LLM returned {type(reply).__name__}, not a message")
        try:
            return from_langchain(reply)
        except ValidationError as exc:  # e.g. a malformed tool name: told by place, never by content
            first = exc.errors(include_url=False, include_input=False)[0]
            problem = f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
        # Raised outside the handler, so the reply's text does not even ride along as its context.
        raise LLMError(f"the LLM's reply is not a valid message ({problem})")

    def credentials(self) -> list[str]:
        # Every provider's model keeps its key as a SecretStr field, under a name of its own.
        found = []
        for value in vars(self.model).values():
            secret = value.get_secret_value() if isinstance(value, SecretStr) else None
            if isinstance(secret, str) and len(secret) >= 4:
                found.append(secret)
        return found


def to_langchain(message: ChatMessage) -> BaseMessage:
    if message.role == "system":
        return SystemMessage(content=message.content)
    if message.role == "user":
        return HumanMessage(content=message.content)
    if message.role == "tool":
        return ToolMessage(content=message.content, tool_call_id=message.tool_call_id or "")
    return AIMessage(content=message.content, tool_calls=[
        {"name": c.name, "args": c.args, "id": c.id, "type": "tool_call"} for c in message.tool_calls])


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content blocks
        return "".join(b.get("text", "") if isinstance(b, dict) else str(b) for b in content)
    return json.dumps(content)


def from_langchain(message: BaseMessage) -> ChatMessage:
    if isinstance(message, SystemMessage):
        return ChatMessage(role="system", content=_text(message.content))
    if isinstance(message, HumanMessage):
        return ChatMessage(role="user", content=_text(message.content))
    if isinstance(message, ToolMessage):
        return ChatMessage(role="tool", content=_text(message.content), tool_call_id=message.tool_call_id)
    if isinstance(message, AIMessage):
        calls = [ToolCall(id=str(c.get("id") or f"call_{i}"), name=c["name"], args=dict(c.get("args") or {}))
                 for i, c in enumerate(message.tool_calls)]
        return ChatMessage(role="assistant", content=_text(message.content), tool_calls=calls)
    raise TypeError(f"cannot carry a {type(message).__name__} across the boundary")


def tool_to_openai(spec: ToolSpec) -> dict:
    return {"type": "function", "function": {"name": spec.name, "description": spec.description,
                                             "parameters": spec.parameters}}
