"""Runs in: hub, vanillagpt.

Which LLM to use, from command-line flags > environment > data/env_variables.json > defaults.

The model is ``provider:model`` (``anthropic:claude-sonnet-4-5``, ``ollama:llama3.1``; the
providers are in ``helpers.llm.providers``) or a bare OpenAI model name; an OpenAI-compatible
server is named by its base URL. The API key is read here, in the hub, and nowhere else, as
the provider's usual variable (``OPENAI_API_KEY``, ``ANTHROPIC_API_KEY``, ...): spokes never
see it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from helpers.configs import paths
from helpers.llm.latency import NO_LATENCY, LatencyModel
from helpers.llm.providers import require_installed, split_model
from helpers.utilities.errors import ConfigError

DEFAULT_MODEL = "gpt-4.1-mini"
DEFAULT_SCRIPT = paths.REPO_ROOT / "helpers" / "llm" / "scripts" / "demo.json"
# What --llm accepts: "worst-case" is another name for "scripted" (the AgentDojo runner's name for
# the offline model that obeys every instruction it sees).
LLM_CHOICES = ("openai", "scripted", "worst-case")
LLM_ALIASES = {"worst-case": "scripted"}
LLM_HELP = "openai: a real model (OpenAI, an OpenAI-compatible server, or the provider --model names as " \
           "provider:model), or scripted: the offline worst-case model (--llm worst-case is the same)"

NO_LLM_HELP = (
    "No LLM is configured. SecGPT needs a chat model that supports tool calling. Either set your "
    "OpenAI key (export OPENAI_API_KEY=sk-..., or put {\"OPENAI_API_KEY\": \"sk-...\"} in "
    "data/env_variables.json, mode 0600), or point SecGPT at an OpenAI-compatible server such as "
    "Ollama, vLLM or llama.cpp (export OPENAI_BASE_URL=http://localhost:11434/v1 and "
    "SECGPT_MODEL=<model name>, or use --base-url and --model), or name another provider's model "
    "(--model anthropic:claude-sonnet-4-5 with ANTHROPIC_API_KEY set, after pip install langchain-anthropic). "
    "To try it offline without any model, run with --llm scripted, a deterministic model that follows a script.")


@dataclass(frozen=True)
class LLMConfig:
    provider: str  # "scripted", or a provider of helpers.llm.providers ("openai", "anthropic", ...)
    model: str  # the provider's name for the model (no "provider:" prefix)
    base_url: str | None = None
    api_key: SecretStr | None = None
    timeout_s: float = 60.0
    max_retries: int = 3
    script: Path | None = None
    latency: LatencyModel = NO_LATENCY  # scripted only: simulated response time of a remote model

    def describe(self) -> str:
        if self.provider == "scripted":
            return f"scripted ({self.script.name if self.script else 'no script'})"
        if self.provider == "openai":
            return f"{self.model} at {self.base_url or 'api.openai.com'}"
        return f"{self.provider}:{self.model}" + (f" at {self.base_url}" if self.base_url else "")


def read_env_file(path: Path | None = None) -> dict[str, str]:
    path = path or paths.env_file()
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path} is not valid JSON ({exc}); fix it or remove it") from exc
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise ConfigError(f"{path} must be a JSON object of strings, e.g. {{\"OPENAI_API_KEY\": \"sk-...\"}}")
    return data


def canonical_llm(llm: str | None) -> str | None:
    """``llm`` under its one name ("worst-case" is "scripted"); None stays None."""
    if llm not in (None, *LLM_CHOICES):
        raise ConfigError(f"unknown LLM {llm!r}: use 'openai' (or any OpenAI-compatible server) or 'scripted' "
                          "(also called 'worst-case')")
    return LLM_ALIASES.get(llm, llm) if llm is not None else None


def load_llm_config(llm: str | None = None, model: str | None = None, base_url: str | None = None,
                    script: str | Path | None = None) -> LLMConfig:
    """Resolve the configuration. ``llm`` is "openai" (a real model: ``model`` may name another
    provider, ``provider:model``), "scripted" (or its other name "worst-case") or None (a real
    LLM if one is configured). Raises ConfigError(NO_LLM_HELP) when nothing usable is
    configured, and a one-line ConfigError for an unknown provider, a provider whose package is
    not installed, or one whose key is not set."""
    file_values = read_env_file()

    def setting(name: str) -> str | None:
        return os.environ.get(name) or file_values.get(name) or None

    llm = canonical_llm(llm)
    if llm == "scripted":
        script_path = Path(script or setting("SECGPT_SCRIPT") or DEFAULT_SCRIPT)
        if not script_path.is_file():
            raise ConfigError(f"script {script_path} not found; pass --script PATH")
        return LLMConfig(provider="scripted", model="scripted", script=script_path)
    base = base_url or setting("OPENAI_BASE_URL")
    provider, name = split_model(model or setting("SECGPT_MODEL") or DEFAULT_MODEL, base)
    require_installed(provider)
    if provider.name == "openai":
        key = setting("OPENAI_API_KEY")
        if not key and not base:
            raise ConfigError(NO_LLM_HELP)
        return LLMConfig(provider="openai", model=name, base_url=base, api_key=SecretStr(key or "not-needed"))
    key = setting(provider.key_variable) if provider.key_variable else None
    if provider.key_variable and not key:
        raise ConfigError(f"the {provider.name} provider needs its API key: export {provider.key_variable}=... "
                          f"or put {{\"{provider.key_variable}\": \"...\"}} in data/env_variables.json (mode 0600)")
    # OPENAI_BASE_URL is OpenAI's: another provider's server is named by --base-url alone.
    return LLMConfig(provider=provider.name, model=name, base_url=base_url,
                     api_key=SecretStr(key) if key else None)


def real_llm_configured() -> bool:
    try:
        load_llm_config()
        return True
    except ConfigError:
        return False
