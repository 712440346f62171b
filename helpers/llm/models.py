"""Runs in: hub, vanillagpt.

Build the hub's chat model from an LLMConfig: the one place a provider is chosen.

A real model is the configured provider's LangChain chat model, built by LangChain's
``init_chat_model`` and wrapped in the one adapter (``helpers.llm.langchain_model``); the
offline ``scripted`` model is built here too, so both come through the same path. Besides the
adapter, this is the only module that touches LangChain's model classes.

Must never: run in a spoke (the model it builds holds the API key).
"""

from __future__ import annotations

from typing import Any

from helpers.llm.config import LLMConfig
from helpers.llm.interface import ChatModel
from helpers.llm.langchain_model import LangChainModel
from helpers.llm.providers import Provider, provider_named, require_installed
from helpers.llm.scripted import Script, ScriptedChatModel


def make_chat_model(config: LLMConfig) -> ChatModel:
    if config.provider == "scripted":
        return ScriptedChatModel(script=Script.load(config.script), latency=config.latency)
    provider = provider_named(config.provider)
    require_installed(provider)
    from langchain.chat_models import init_chat_model  # imported only where a real model is used
    return LangChainModel(init_chat_model(config.model, model_provider=provider.name, **_settings(provider, config)))


def _settings(provider: Provider, config: LLMConfig) -> dict[str, Any]:
    settings: dict[str, Any] = {"temperature": 0}
    if config.api_key is not None:
        settings["api_key"] = config.api_key
    # Given even when None for OpenAI: its client would otherwise take a URL from variables of its
    # own (OPENAI_API_BASE) that the configuration did not read.
    if config.base_url is not None or provider.name == "openai":
        settings["base_url"] = config.base_url
    if provider.name == "ollama":  # its client takes httpx's settings, and has no retries
        settings["client_kwargs"] = {"timeout": config.timeout_s}
    else:
        settings.update(timeout=config.timeout_s, max_retries=config.max_retries)
    return settings
