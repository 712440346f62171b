"""Runs in: hub, vanillagpt.

The LLM client: every model call the hub makes goes through here (planner, quarantined
extractor, memory upkeep, and spokes' ``llm_request``), made with the hub's key; VanillaGPT
calls its model through the same client. Calls are counted for the benchmarks, and charged
through the ``charge`` hook its owner gives (the hub: ``hub.budget.charge_llm``, to the app a
call is made for).

A failed call becomes an LLMError carrying only a fixed category and the HTTP
status (``the LLM call failed: rate_limited (429)``): what the provider wrote
never leaves the client, since a provider (or a proxy, or a misconfigured local
server) may echo the request, Authorization header included. The full detail,
with anything that looks like a credential redacted, goes to the ``audit`` its
owner gives (the hub's audit log).

Must never: import the hub (what it needs of it is handed in), or let a provider's
error text reach anyone but the audit log.
"""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from helpers.isc.messages import ChatMessage, ToolSpec
from helpers.llm.interface import ChatModel
from helpers.utilities.errors import LLMError

# A provider's status, as the one word a spoke (and the user) is told.
STATUS_CATEGORIES = {401: "auth_failed", 403: "auth_failed", 408: "timeout", 429: "rate_limited"}
MAX_DETAIL = 2000  # characters of the redacted detail kept in the audit log

# Whatever looks like a credential in an error text; the key the hub's model holds is removed as well.
CREDENTIAL_PATTERNS = (
    re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{4,}"),
    re.compile(r"(?i)((?:authorization|api[_-]?key|x-api-key|token|secret|password)[\"']?\s*[:=]\s*[\"']?)"
               r"[^\s\"',;}]+"),
    re.compile(r"\b(?:sk|pk|rk)-[A-Za-z0-9_-]{6,}"),
    re.compile(r"\b(?=[A-Za-z0-9_-]*\d)(?=[A-Za-z0-9_-]*[A-Za-z])[A-Za-z0-9_-]{32,}\b"),  # long opaque tokens
)


class Audit(Protocol):
    """Where a failure is told in full (redacted): the hub's audit log."""

    def record(self, event: str, /, **fields: Any) -> Any: ...


class LLMClient:
    def __init__(self, model: ChatModel, *, charge: Callable[[int], None] | None = None,
                 audit: Audit | None = None) -> None:
        """``charge(prompt_bytes)`` is called before each call and may refuse it by raising (the
        hub's budgets); ``audit`` hears each failure in full, redacted (set later by the hub
        operator when not given)."""
        self.model = model
        self.charge = charge
        self.audit = audit
        self.calls = 0
        self.calls_by_purpose: Counter[str] = Counter()  # "planner", "memory", a spoke's name, ...
        self.prompt_chars = 0  # characters of every prompt sent (messages and tool descriptions)
        self._count_lock = threading.Lock()

    def complete(self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec] = (),
                 purpose: str = "hub") -> ChatMessage:
        """The model's reply, counted under ``purpose``; any failure of the call is an LLMError."""
        if self.charge is not None:  # before the call: an app over its budget costs nothing more
            self.charge(prompt_bytes(messages, tools))
        chars = sum(len(m.content) for m in messages) + sum(len(t.description) + len(str(t.parameters)) for t in tools)
        with self._count_lock:  # spokes may be served at once (strict phrasing)
            self.calls += 1
            self.calls_by_purpose[purpose] += 1
            self.prompt_chars += chars
        try:
            reply, failure = self.model.complete(messages, tools), None
        except LLMError:
            raise  # already one fixed line (the adapter's check of the reply)
        except Exception as exc:  # noqa: BLE001 - provider SDKs raise many types; one fixed line out
            reply, failure = None, self._failed(exc, purpose)
        if failure is not None:  # raised outside the handler: the provider's exception is not even its context
            raise LLMError(*failure)
        return reply

    def model_for(self, purpose: str) -> ChatModel:
        """This client as a ChatModel whose calls are counted under ``purpose`` (for the agent
        loop and memory upkeep)."""
        return _Purposed(self, purpose)

    def _failed(self, exc: Exception, purpose: str) -> tuple[str, str]:
        """The one line a failure is told as, and its category; the detail, redacted, to the audit log."""
        category, status = classify(exc)
        if self.audit is not None:
            self.audit.record("llm_error", purpose=purpose, category=category, status=status,
                              error=type(exc).__name__, detail=self.redact(str(exc))[:MAX_DETAIL])
        return f"the LLM call failed: {category}{f' ({status})' if status else ''}", category

    def redact(self, text: str) -> str:
        """``text`` without the model's key and without anything else that looks like a credential."""
        for secret in self.model.credentials():
            text = text.replace(secret, "[redacted]")
        for pattern in CREDENTIAL_PATTERNS:
            text = pattern.sub(lambda m: (m.group(1) if m.groups() and m.group(1) else "") + "[redacted]", text)
        return text


def classify(exc: BaseException) -> tuple[str, int | None]:
    """(category, HTTP status) of a failed call, from the exception's type and status code, never
    from its text. Looks through the chain, since clients wrap transport errors."""
    import httpx
    try:
        import openai
        timeouts: tuple[type, ...] = (openai.APITimeoutError,)
        connections: tuple[type, ...] = (openai.APIConnectionError,)
    except ImportError:  # pragma: no cover - langchain-openai brings it
        timeouts, connections = (), ()
    seen: set[int] = set()
    error: BaseException | None = exc
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        status = getattr(error, "status_code", None)
        if status is None:
            status = getattr(getattr(error, "response", None), "status_code", None)
        if isinstance(status, int):
            if status in STATUS_CATEGORIES:
                return STATUS_CATEGORIES[status], status
            return ("bad_request" if 400 <= status < 500 else "provider_error"), status
        if isinstance(error, (TimeoutError, httpx.TimeoutException, *timeouts)):
            return "timeout", None
        if isinstance(error, (ConnectionError, httpx.TransportError, *connections)):
            return "connection", None
        error = error.__cause__ or error.__context__
    return "unexpected_error", None


def prompt_bytes(messages: Sequence[ChatMessage], tools: Sequence[ToolSpec] = ()) -> int:
    """What one call sends, in UTF-8 bytes: every message's text and tool calls, every tool's
    description and parameter schema."""
    size = 0
    for m in messages:
        size += len(m.content.encode("utf-8", "surrogatepass"))
        if m.tool_calls:  # counted in the form budgets were sized by: name, args, id, type
            size += len(json.dumps([{"name": c.name, "args": c.args, "id": c.id, "type": "tool_call"}
                                    for c in m.tool_calls], default=str).encode())
    for t in tools:
        size += len(t.description.encode("utf-8", "surrogatepass")) + len(json.dumps(t.parameters, default=str))
    return size


class _Purposed(ChatModel):
    def __init__(self, client: LLMClient, purpose: str) -> None:
        self.client, self.purpose = client, purpose

    def complete(self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec] = ()) -> ChatMessage:
        return self.client.complete(messages, tools, self.purpose)
