"""Runs in: hub, vanillagpt.

LLM-driven memory upkeep: remembered entities and the running summary.

Both run as separate, app-free LLM calls made by the owner of the memory (the
hub, or VanillaGPT), so no app's context ever sees them.
"""

from __future__ import annotations

import json

from helpers.isc.messages import ChatMessage
from helpers.llm.interface import ChatModel
from helpers.templates import prompts


def parse_json_object(text: str) -> dict | None:
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        return None
    try:
        value = json.loads(text[start:end + 1])
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _ask(model: ChatModel, prompt: str) -> str:
    return model.complete([ChatMessage(role="user", content=prompt)]).content


def extract_entities(model: ChatModel, message: str) -> dict[str, str]:
    """A flat dict of the facts ``message`` states about the user, {} if none or unparseable."""
    found = parse_json_object(_ask(model, prompts.ENTITIES.format(message=message))) or {}
    return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in found.items() if v not in (None, "")}


def summarizer(model: ChatModel):
    def summarize(previous: str, messages: list[dict]) -> str:
        text = "\n".join(f"{m['role']}: {m['content']}" for m in messages)
        return _ask(model, prompts.SUMMARY.format(summary=previous or "(none)", messages=text))
    return summarize


def remember_turn(store, namespace: str, model: ChatModel, query: str, answer: str) -> None:
    """After an answer: keep the exchange (folding old turns into the summary) and the
    facts the user stated. ``store`` is a MemoryStore."""
    store.append(namespace, [{"role": "user", "content": query}, {"role": "assistant", "content": answer}],
                 summarize=summarizer(model))
    store.remember(namespace, extract_entities(model, query))
