"""Runs in: hub, vanillagpt.

Conversation memory in Redis: history, a running summary and remembered entities,
one namespace per user and per owner (the hub, each app, VanillaGPT).

The only place that knows the Redis encoding. Only the hub uses it: spokes ask
through ``memory_request`` and the hub picks their namespace.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import redis

from helpers.utilities.errors import MemoryUnavailable

MAX_MESSAGES = 20   # kept verbatim; older ones are folded into the summary
KEEP_AFTER_FOLD = 10

Summarizer = Callable[[str, list[dict]], str]


class MemoryStore:
    def __init__(self, client: redis.Redis, user: str) -> None:
        self.client = client
        self.user = user

    def _key(self, namespace: str, kind: str) -> str:
        return f"secgpt:{self.user}:{namespace}:{kind}"

    def _guard(self, action: Callable):
        try:
            return action()
        except redis.RedisError as exc:
            raise MemoryUnavailable(f"Redis failed ({exc}); memory is unavailable until it is back") from exc

    # --- history and summary ----------------------------------------------------------------
    def history(self, namespace: str) -> list[dict]:
        raw = self._guard(lambda: self.client.lrange(self._key(namespace, "history"), 0, -1))
        return [json.loads(r) for r in raw]

    def context(self, namespace: str) -> list[dict]:
        """What an agent gets: the summary of older turns (if any), then the recent messages."""
        summary = self.summary(namespace)
        head = [{"role": "assistant", "content": f"(Earlier in this conversation: {summary})"}] if summary else []
        return head + self.history(namespace)

    def append(self, namespace: str, messages: list[dict], summarize: Summarizer | None = None) -> None:
        key = self._key(namespace, "history")
        encoded = [json.dumps({"role": m["role"], "content": str(m["content"])}) for m in messages]
        length = self._guard(lambda: self.client.rpush(key, *encoded)) if encoded else 0
        if summarize is not None and length > MAX_MESSAGES:
            old = self.history(namespace)[: length - KEEP_AFTER_FOLD]
            self.set_summary(namespace, summarize(self.summary(namespace), old))
            self._guard(lambda: self.client.ltrim(key, len(old), -1))

    def summary(self, namespace: str) -> str:
        return self._guard(lambda: self.client.get(self._key(namespace, "summary"))) or ""

    def set_summary(self, namespace: str, text: str) -> None:
        self._guard(lambda: self.client.set(self._key(namespace, "summary"), text))

    # --- entities ----------------------------------------------------------------------------
    def entities(self, namespace: str) -> dict[str, str]:
        return self._guard(lambda: self.client.hgetall(self._key(namespace, "entities")))

    def remember(self, namespace: str, entities: dict[str, str]) -> None:
        clean = {str(k): str(v) for k, v in entities.items() if v not in (None, "")}
        if clean:
            self._guard(lambda: self.client.hset(self._key(namespace, "entities"), mapping=clean))

    def clear(self, namespace: str) -> None:
        self._guard(lambda: self.client.delete(*(self._key(namespace, k)
                                                for k in ("history", "summary", "entities"))))
