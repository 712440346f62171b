"""Runs in: zygote, spoke.

The chat model a spoke uses: every call is an ``llm_request`` to the hub.

The spoke never holds an API key and never opens a socket; the hub makes the
call with its own model and returns the assistant message. The request carries
the project's own message types, exactly as the agent loop holds them.
"""

from __future__ import annotations

from collections.abc import Sequence

from helpers.isc.messages import ChatMessage, ErrorMessage, LLMRequest, LLMResponse, ToolSpec
from helpers.llm.interface import ChatModel
from helpers.utilities.errors import LLMError
from spoke.spoke_operator import SpokeOperator


class HubChatModel(ChatModel):
    def __init__(self, operator: SpokeOperator) -> None:
        self.operator = operator

    def complete(self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec] = ()) -> ChatMessage:
        reply = self.operator.request(LLMRequest(id=self.operator.next_id(), messages=list(messages),
                                                 tools=list(tools)))
        if isinstance(reply, ErrorMessage):
            raise LLMError(reply.message)
        if not isinstance(reply, LLMResponse):
            raise LLMError(f"the hub answered an LLM request with {reply.type}")
        return reply.message
