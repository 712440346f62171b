"""A hub operator without a planner, for tests that drive a real spoke's requests directly:
the real broker, audit log, LLM client (around any chat model, charged to the hub's budgets),
and memory in a real Redis.
Spokes run the ``sandbox`` app, whose code is the test's."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage

from helpers.llm.client import LLMClient
from helpers.llm.interface import ChatModel
from helpers.llm.langchain_model import LangChainModel
from helpers.sandbox.app_spec import AppSpec
from helpers.sandbox.budget import Budget
from hub import budget as budgets
from hub.audit import AuditLog, read_audit
from hub.broker import SpokeBroker

# Code a spoke runs to ask the hub's LLM ``n`` times with a prompt of ``size`` characters; prints
# each reply's type or error code, then the last error's message.
ASK_LLM = """
from helpers.isc.messages import ChatMessage, LLMRequest
codes, last = [], ""
for i in range({n}):
    r = hub.request(LLMRequest(id=hub.next_id(), messages=[ChatMessage(role="user", content="x" * {size})]))
    codes.append(getattr(r, "code", r.type))
    last = getattr(r, "message", last)
print(" ".join(codes))
print(last)
"""


def echo_model() -> ChatModel:
    """A LangChain fake that always says "ok", through the adapter as any provider's model."""
    return LangChainModel(GenericFakeChatModel(messages=itertools.repeat(AIMessage(content="ok"))))


@dataclass
class World:
    broker: SpokeBroker
    llm: LLMClient
    audit: AuditLog
    said: list[tuple[str, str]] = field(default_factory=list)  # what the operator emitted for the user

    def run(self, code: str, name: str = "spender", budget: Budget | None = None, timeout: float = 60.0):
        from helpers.sandbox.sandbox import SANDBOX_APP
        spoke = self.broker.start(AppSpec(name=name, module=SANDBOX_APP.module, budget=budget or Budget()))
        try:
            outcome = self.broker.call(spoke, "run_code", {"code": code}, timeout=timeout)
            return outcome, spoke
        finally:
            if spoke.alive:
                self.broker.stop(spoke)

    def events(self, event: str | None = None) -> list[dict]:
        return [e for e in read_audit(self.audit.path) if event is None or e["event"] == event]


@contextmanager
def operator_world(launcher, data_dir, model: ChatModel | None = None) -> Iterator[World]:
    from helpers.memory.redis_server import EmbeddedRedis, connect
    from helpers.memory.store import MemoryStore
    from hub.hub_operator import HubOperator
    server = EmbeddedRedis(data_dir).start()
    client = connect(server.url)
    audit = AuditLog(data_dir / "audit" / "audit.jsonl")
    broker = SpokeBroker(launcher, audit)
    world = World(broker, LLMClient(model or echo_model(), charge=budgets.charge_llm), audit)
    HubOperator(broker, None, None, MemoryStore(client, "0"), world.llm, "0",
                emit=lambda kind, text: world.said.append((kind, text)))
    try:
        yield world
    finally:
        broker.close()
        audit.close()
        client.close()
        server.stop()
