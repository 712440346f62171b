"""Runs in: hub, vanillagpt.

The base of the offline models: the ``scripted`` model (``helpers.llm.scripted``) and the
AgentDojo worst-case model (``evaluation.agentdojo.oracle``).

Both stand for a competent, worst-case obedient LLM whose reply depends only on the messages
and tools it is given. What they share lives here: every input is recorded (``history``, for
tests and debugging), a remote model's response time can be simulated (``latency``, a
``helpers.llm.latency.LatencyModel``: fixed per call, or by the reply's tokens), tool calls get
ids of their own (``call_id``), and ``complete`` is the one template that records, asks the
subclass's ``reply``, then waits as long as that reply would take to arrive. Built through the same path as a real model
(``helpers.llm.models.make_chat_model``) or passed in as one.

Must never: use the network, randomness or anything but its input to choose a reply.
"""

from __future__ import annotations

import itertools
import threading
import time
from abc import abstractmethod
from collections.abc import Sequence

from helpers.isc.messages import ChatMessage, ToolSpec
from helpers.llm.interface import ChatModel
from helpers.llm.latency import NO_LATENCY, LatencyModel


class OfflineModel(ChatModel):
    call_prefix = "call"  # tool-call ids are "<prefix>_1", "<prefix>_2", ...

    def __init__(self, latency: LatencyModel = NO_LATENCY) -> None:
        self.latency = latency  # answer after this long, to stand for a remote model (benchmarks)
        self.history: list[list[ChatMessage]] = []  # every input given, in order
        self._ids = itertools.count(1)
        self._lock = threading.Lock()  # the hub may ask for several spokes at once

    def complete(self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec] = ()) -> ChatMessage:
        self.history.append(list(messages))
        reply = self.reply(list(messages), list(tools))
        if self.latency.simulated:
            time.sleep(self.latency.seconds(reply.content, ((c.name, c.args) for c in reply.tool_calls)))
        return reply

    @abstractmethod
    def reply(self, messages: list[ChatMessage], tools: list[ToolSpec]) -> ChatMessage:
        """The reply to this input: a function of the input alone (call ids aside)."""

    def call_id(self) -> str:
        with self._lock:
            return f"{self.call_prefix}_{next(self._ids)}"


def last_user_index(messages: Sequence[ChatMessage]) -> int:
    """Where the user's latest message is (-1: none): what comes after it is the current turn."""
    return max((i for i, m in enumerate(messages) if m.role == "user"), default=-1)
