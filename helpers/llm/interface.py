"""Runs in: hub, zygote, spoke, vanillagpt.

The one way SecGPT calls a chat model: ``ChatModel.complete(messages, tools) -> message``.

Messages and tools are the project's own types (``helpers.isc.messages``: ChatMessage,
ToolCall, ToolSpec), the same ones a spoke's ``llm_request`` carries. The planner, the
quarantined extractor, memory upkeep and the agent loop (in spokes and in VanillaGPT) call
models only through this interface; the offline models implement it directly, and a provider's
chat model is wrapped by its adapter (``helpers.llm.langchain_model``).

Must never: let a provider's types (LangChain messages, SDK payloads) past an adapter.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from helpers.isc.messages import ChatMessage, ToolSpec


class ChatModel(ABC):
    @abstractmethod
    def complete(self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec] = ()) -> ChatMessage:
        """The assistant's reply to ``messages``; it may call any of ``tools`` (its ``tool_calls``)."""

    def credentials(self) -> list[str]:
        """The secrets this model holds (API keys), so that an error's text can be cleaned of them."""
        return []


def chat_history(items: list) -> list[ChatMessage]:
    """Stored chat history ({role, content} items) as messages: the user's as user messages,
    anything else as the assistant's; an item that is not one is skipped."""
    return [ChatMessage(role="user" if m.get("role") == "user" else "assistant", content=m["content"])
            for m in items if isinstance(m, dict) and isinstance(m.get("content"), str)]
