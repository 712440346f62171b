"""The hub's LLM: every model call in SecGPT goes through here (planner, memory upkeep,
and spokes' ``llm_request``), made with the hub's key. Calls are counted for the
benchmarks, and charged to the app a call is made for (``hub.budget``).

A failed call becomes an LLMError carrying only a fixed category and the HTTP
status (``the LLM call failed: rate_limited (429)``): what the provider wrote
never leaves the hub, since a provider (or a proxy, or a misconfigured local
server) may echo the request, Authorization header included. The full detail,
with anything that looks like a credential redacted, goes to the audit log.

Runs in: hub.
"""

from __future__ import annotations

import json
import re
import threading
from collections import Counter

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage

from helpers.isc.messages import ChatMessage, ToolSpec
from helpers.llm.convert import from_langchain, to_langchain, tool_to_openai
from helpers.utilities.errors import LLMError
from hub import budget
from hub.audit import AuditLog

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


class LLMBroker:
    def __init__(self, model: BaseChatModel, audit: AuditLog | None = None) -> None:
        self.model = model
        self.audit = audit  # where failures are told in full (redacted); set by the hub operator
        self.calls = 0
        self.calls_by_purpose: Counter[str] = Counter()  # "planner", "memory", a spoke's name, ...
        self.prompt_chars = 0  # characters of every prompt sent (messages and tool descriptions)
        self._count_lock = threading.Lock()

    def invoke(self, messages: list[BaseMessage], tools: list[ToolSpec] | None = None,
               purpose: str = "hub") -> AIMessage:
        # Charged before the call: an app over its budget costs the hub nothing more.
        budget.charge_llm(prompt_bytes(messages, tools))
        chars = sum(len(str(m.content)) for m in messages) + sum(
            len(t.description) + len(str(t.parameters)) for t in tools or [])
        with self._count_lock:  # spokes may be served at once (strict phrasing)
            self.calls += 1
            self.calls_by_purpose[purpose] += 1
            self.prompt_chars += chars
        runnable = self.model.bind_tools([tool_to_openai(t) for t in tools]) if tools else self.model
        try:
            reply, failure = runnable.invoke(messages), None
        except Exception as exc:  # noqa: BLE001 - provider SDKs raise many types; one fixed line out
            reply, failure = None, self._failed(exc, purpose)
        if failure is not None:  # raised outside the handler: the provider's exception is not even its context
            raise LLMError(*failure)
        if not isinstance(reply, AIMessage):
            raise LLMError(f"the LLM returned {type(reply).__name__}, not a message")
        return reply

    def complete(self, messages: list[ChatMessage], tools: list[ToolSpec], purpose: str) -> ChatMessage:
        """For a spoke's ``llm_request``: wire types in, wire type out."""
        return from_langchain(self.invoke([to_langchain(m) for m in messages], tools, purpose))

    def _failed(self, exc: Exception, purpose: str) -> tuple[str, str]:
        """The one line a failure is told as, and its category; the detail, redacted, to the audit log."""
        category, status = classify(exc)
        if self.audit is not None:
            self.audit.record("llm_error", purpose=purpose, category=category, status=status,
                              error=type(exc).__name__, detail=self.redact(str(exc))[:MAX_DETAIL])
        return f"the LLM call failed: {category}{f' ({status})' if status else ''}", category

    def redact(self, text: str) -> str:
        """``text`` without the model's key and without anything else that looks like a credential."""
        for secret in _secrets_of(self.model):
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


def prompt_bytes(messages: list[BaseMessage], tools: list[ToolSpec] | None = None) -> int:
    """What one call sends, in UTF-8 bytes: every message's text and tool calls, every tool's
    description and parameter schema."""
    size = 0
    for m in messages:
        content = m.content if isinstance(m.content, str) else json.dumps(m.content, default=str)
        size += len(content.encode("utf-8", "surrogatepass"))
        calls = getattr(m, "tool_calls", None)
        if calls:
            size += len(json.dumps(calls, default=str).encode())
    for t in tools or []:
        size += len(t.description.encode("utf-8", "surrogatepass")) + len(json.dumps(t.parameters, default=str))
    return size


def _secrets_of(model: BaseChatModel) -> list[str]:
    """The credentials the model holds (langchain keeps them as SecretStr)."""
    found = []
    for name in ("openai_api_key", "api_key", "anthropic_api_key", "google_api_key"):
        value = getattr(model, name, None)
        secret = value.get_secret_value() if hasattr(value, "get_secret_value") else None
        if isinstance(secret, str) and len(secret) >= 4:
            found.append(secret)
    return found
