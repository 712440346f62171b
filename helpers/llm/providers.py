"""Runs in: hub, vanillagpt.

The LangChain chat-model providers SecGPT can use by name (``--model provider:model``).

Each is built through LangChain's ``init_chat_model`` (``helpers.llm.models``). A provider's
integration package is an optional install: only ``langchain-openai`` (the default) is in
requirements.txt. A name is split here: ``anthropic:claude-sonnet-4-5`` is the anthropic
provider's model ``claude-sonnet-4-5``; a bare name is an OpenAI model, as is any name given
with a base URL (an OpenAI-compatible server's own model names, ``qwen2.5:7b``, keep their
colons).

Must never: import a provider's package (only look whether it is installed).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

from helpers.utilities.errors import ConfigError


@dataclass(frozen=True)
class Provider:
    name: str          # LangChain's provider name (init_chat_model's model_provider)
    package: str       # what pip installs
    module: str        # what it installs, to look for
    key_variable: str | None  # where its API key is read from; None: it needs none (a local server)


PROVIDERS = {p.name: p for p in (
    Provider("openai", "langchain-openai", "langchain_openai", "OPENAI_API_KEY"),
    Provider("anthropic", "langchain-anthropic", "langchain_anthropic", "ANTHROPIC_API_KEY"),
    Provider("google_genai", "langchain-google-genai", "langchain_google_genai", "GOOGLE_API_KEY"),
    Provider("mistralai", "langchain-mistralai", "langchain_mistralai", "MISTRAL_API_KEY"),
    Provider("groq", "langchain-groq", "langchain_groq", "GROQ_API_KEY"),
    Provider("deepseek", "langchain-deepseek", "langchain_deepseek", "DEEPSEEK_API_KEY"),
    Provider("xai", "langchain-xai", "langchain_xai", "XAI_API_KEY"),
    Provider("ollama", "langchain-ollama", "langchain_ollama", None),
)}
# OpenAI's fine-tuned models are named "ft:<base>:<org>:...": a bare OpenAI name, not a provider.
_OPENAI_NAME_PREFIXES = ("ft",)


def split_model(name: str, base_url: str | None = None) -> tuple[Provider, str]:
    """(provider, model) of a ``--model`` value. ConfigError (one line) for a provider not known."""
    prefix, colon, rest = name.partition(":")
    if not colon or prefix in _OPENAI_NAME_PREFIXES or (base_url and _known(prefix) is None):
        return PROVIDERS["openai"], name  # with a base URL: the OpenAI-compatible server's own name
    provider = provider_named(prefix)
    if not rest.strip():
        raise ConfigError(f"{name!r} names no model: write {provider.name}:<model name>")
    return provider, rest


def provider_named(name: str) -> Provider:
    """The provider called ``name``; ConfigError (one line, listing the known ones) if none is."""
    provider = _known(name)
    if provider is None:
        raise ConfigError(f"unknown LLM provider {name!r}: use --model provider:model with one of "
                          f"{', '.join(PROVIDERS)} (e.g. anthropic:claude-sonnet-4-5), or a bare OpenAI model name")
    return provider


def _known(name: str) -> Provider | None:
    return PROVIDERS.get(name.strip().lower().replace("-", "_"))  # LangChain writes google_genai, users google-genai


def require_installed(provider: Provider) -> None:
    """ConfigError naming the pip command when the provider's package is missing."""
    if importlib.util.find_spec(provider.module) is None:
        raise ConfigError(f"the {provider.name} provider needs its package: pip install {provider.package}")
