"""LLM configuration and failure handling."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from pydantic import SecretStr

from helpers.configs import paths
from helpers.isc.messages import ChatMessage
from helpers.llm.client import LLMClient
from helpers.llm.config import DEFAULT_MODEL, NO_LLM_HELP, LLMConfig, load_llm_config
from helpers.llm.langchain_model import LangChainModel
from helpers.llm.models import make_chat_model
from helpers.llm.providers import PROVIDERS, split_model
from helpers.utilities.errors import ConfigError, LLMError
from tests.flow_helpers import METRO, Q_ONE, SCRIPT, secgpt
from tests.http_helpers import QuietHandler
from tests.openai_server import OpenAIServer


@pytest.fixture
def clean_env(monkeypatch, data_dir):
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "SECGPT_MODEL", "SECGPT_SCRIPT",
                 *(p.key_variable for p in PROVIDERS.values() if p.key_variable)):
        monkeypatch.delenv(name, raising=False)
    return data_dir


def test_no_llm_configured(clean_env):
    with pytest.raises(ConfigError) as info:
        load_llm_config()
    assert str(info.value) == NO_LLM_HELP


def test_key_from_env_file_and_env_wins(clean_env, monkeypatch):
    env_file = clean_env / "env_variables.json"
    env_file.write_text(json.dumps({"OPENAI_API_KEY": "sk-file", "SECGPT_MODEL": "file-model"}))
    config = load_llm_config()
    assert config.api_key.get_secret_value() == "sk-file" and config.model == "file-model"
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    assert load_llm_config().api_key.get_secret_value() == "sk-env"
    assert load_llm_config(model="flag-model").model == "flag-model"


def test_local_server_needs_no_key(clean_env):
    config = load_llm_config(base_url="http://localhost:11434/v1", model="llama3.1")
    assert config.provider == "openai" and config.base_url.startswith("http://localhost")
    assert load_llm_config(base_url="http://x/v1").model == DEFAULT_MODEL


def test_bad_env_file(clean_env):
    (clean_env / "env_variables.json").write_text("{oops")
    with pytest.raises(ConfigError, match="env_variables.json is not valid JSON"):
        load_llm_config()


# --- any LangChain provider by name: --model provider:model -------------------------------------------

@pytest.mark.parametrize("name, base_url, provider, model", [
    ("gpt-4.1-mini", None, "openai", "gpt-4.1-mini"),  # a bare name stays OpenAI
    ("openai:gpt-4.1-mini", None, "openai", "gpt-4.1-mini"),
    ("anthropic:claude-sonnet-4-5", None, "anthropic", "claude-sonnet-4-5"),
    ("google-genai:gemini-2.5-flash", None, "google_genai", "gemini-2.5-flash"),  # LangChain's spelling too
    ("ollama:llama3.1:8b", None, "ollama", "llama3.1:8b"),  # the model's own colon is kept
    ("qwen2.5:7b", "http://127.0.0.1:11434/v1", "openai", "qwen2.5:7b"),  # an OpenAI-compatible server's name
    ("ft:gpt-4o-mini:acme::x1", None, "openai", "ft:gpt-4o-mini:acme::x1"),  # OpenAI's fine-tuned names
])
def test_model_names_split_into_provider_and_model(name, base_url, provider, model):
    found, rest = split_model(name, base_url)
    assert (found.name, rest) == (provider, model)


def test_openai_by_name_through_the_real_client(launcher, clean_env, monkeypatch):
    """``openai:<model>``: built by LangChain's init_chat_model, sent by langchain-openai to the
    local server under the model's own name and with the key read from the data directory."""
    (clean_env / "env_variables.json").write_text(json.dumps({"OPENAI_API_KEY": "sk-from-file"}))
    with OpenAIServer(SCRIPT) as server:
        config = load_llm_config(model="openai:flows-model", base_url=server.base_url)
        assert (config.provider, config.model) == ("openai", "flows-model")
        assert type(make_chat_model(config).model).__name__ == "ChatOpenAI"
        with secgpt(launcher, config) as hub:
            assert METRO in hub.answer(Q_ONE).text
    assert server.requests and all(r["model"] == "flows-model" for r in server.requests)
    assert {r["auth"] for r in server.requests} == {"Bearer sk-from-file"}


def _missing_provider():
    import importlib.util
    missing = [p for p in PROVIDERS.values() if importlib.util.find_spec(p.module) is None]
    if not missing:
        pytest.skip("every provider's package is installed here")
    return next((p for p in missing if p.name == "anthropic"), missing[0])


def test_a_provider_whose_package_is_missing_is_one_line_naming_pip(clean_env, monkeypatch):
    provider = _missing_provider()
    if provider.key_variable:
        monkeypatch.setenv(provider.key_variable, "k-0123456789")
    hint = f"the {provider.name} provider needs its package: pip install {provider.package}"
    with pytest.raises(ConfigError) as info:
        load_llm_config(model=f"{provider.name}:some-model")
    assert str(info.value) == hint
    with pytest.raises(ConfigError) as info:  # a configuration made in code meets the same check
        make_chat_model(LLMConfig(provider=provider.name, model="some-model"))
    assert str(info.value) == hint
    result = _chat("secgpt_main.py", "--model", f"{provider.name}:some-model", stdin="hello\n",
                   env_extra={provider.key_variable: "k-0123456789"} if provider.key_variable else {},
                   data_dir=clean_env)
    assert result.returncode == 2 and result.stderr == hint + "\n"  # the whole output: one line


def test_an_unknown_provider_is_one_line_listing_the_known_ones(clean_env, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    for attempt in (lambda: load_llm_config(model="antropic:claude-sonnet-4-5"),
                    lambda: make_chat_model(LLMConfig(provider="antropic", model="claude-sonnet-4-5"))):
        with pytest.raises(ConfigError) as info:
            attempt()
        message = str(info.value)
        assert message.startswith("unknown LLM provider 'antropic'") and "\n" not in message
        assert all(name in message for name in PROVIDERS)
    with pytest.raises(ConfigError, match="names no model"):
        load_llm_config(model="anthropic:")


# A stand-in for an installed provider package: LangChain's init_chat_model imports it by the
# provider's module name, as it would the real one (which is not installed here).
STAND_IN = """
from typing import Any
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import ConfigDict, Field, SecretStr

class ChatAnthropic(BaseChatModel):
    model_config = ConfigDict(populate_by_name=True)
    model: str
    anthropic_api_key: SecretStr = Field(alias="api_key")
    default_request_timeout: float | None = Field(None, alias="timeout")
    max_retries: int = 2
    temperature: float | None = None

    @property
    def _llm_type(self) -> str:
        return "stand-in"

    def bind_tools(self, tools, **kwargs):
        return self.bind(tools=tools, **kwargs)

    def _generate(self, messages, stop=None, run_manager=None, tools=(), **kwargs: Any) -> ChatResult:
        if "fail" in messages[-1].content:
            raise RuntimeError(f"rejected key {self.anthropic_api_key.get_secret_value()}")
        calls = [{"name": t["function"]["name"], "args": {}, "id": "a1", "type": "tool_call"} for t in tools]
        text = f"{self.model} {self.default_request_timeout} {self.max_retries} {self.temperature}"
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text, tool_calls=calls))])
"""

STAND_IN_RUN = """
import json
from helpers.isc.messages import ChatMessage, ToolSpec
from helpers.llm.client import LLMClient
from helpers.llm.config import load_llm_config
from helpers.llm.models import make_chat_model

class Audit:
    def record(self, event, **fields):
        print(json.dumps({"event": event, **fields}))

config = load_llm_config(model="anthropic:claude-test")
model = make_chat_model(config)
reply = model.complete([ChatMessage(role="user", content="hi")],
                       [ToolSpec(name="metro_hail", description="fares", parameters={"type": "object"})])
print(json.dumps({"describe": config.describe(), "content": reply.content,
                  "calls": [c.name for c in reply.tool_calls], "credentials": model.credentials()}))
try:
    LLMClient(model, audit=Audit()).complete([ChatMessage(role="user", content="fail")])
except Exception as exc:
    print(json.dumps({"error": str(exc)}))
"""


def test_another_provider_is_built_by_name_with_its_key_and_limits(clean_env, tmp_path):
    """A provider other than OpenAI, by name, through init_chat_model: its key is read from the
    data directory as its usual variable, it gets the timeout, retries and temperature, and a
    failure's text is cleaned of its key, whatever the provider calls the key's field."""
    key = "ak-stand-in-0123456789abcdef"
    package = tmp_path / "packages" / "langchain_anthropic"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(STAND_IN)
    (clean_env / "env_variables.json").write_text(json.dumps({"ANTHROPIC_API_KEY": key}))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "SECGPT_", "ANTHROPIC_"))}
    env.update(SECGPT_DATA_DIR=str(clean_env), PYTHONPATH=f"{package.parent}{os.pathsep}{paths.REPO_ROOT}")
    result = subprocess.run([sys.executable, "-c", STAND_IN_RUN], capture_output=True, text=True, timeout=120,
                            cwd=paths.REPO_ROOT, env=env)
    assert result.returncode == 0, result.stderr
    built, audited, failed = (json.loads(line) for line in result.stdout.splitlines())
    assert built == {"describe": "anthropic:claude-test", "content": "claude-test 60.0 3 0.0",
                     "calls": ["metro_hail"], "credentials": [key]}
    assert audited["event"] == "llm_error" and "rejected key [redacted]" in audited["detail"]
    assert failed == {"error": "the LLM call failed: unexpected_error"}
    assert key not in json.dumps([audited, failed])  # (a key this short and plain only the model's own list finds)


def test_another_providers_key_is_required(clean_env, tmp_path, monkeypatch):
    package = tmp_path / "langchain_anthropic"
    package.mkdir()
    (package / "__init__.py").write_text("")  # installed, as far as configuration can tell
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConfigError) as info:
        load_llm_config(model="anthropic:claude-test")
    assert str(info.value).startswith("the anthropic provider needs its API key: export ANTHROPIC_API_KEY=")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "ak-env")
    config = load_llm_config(model="anthropic:claude-test", base_url="http://127.0.0.1:9/")
    assert (config.provider, config.model, config.api_key.get_secret_value(), config.base_url) == (
        "anthropic", "claude-test", "ak-env", "http://127.0.0.1:9/")


def _http_llm(server: OpenAIServer) -> LLMConfig:
    return LLMConfig(provider="openai", model="m", base_url=server.base_url, api_key=SecretStr("sk-t"),
                     timeout_s=10, max_retries=2)


def test_retries_then_succeeds(launcher, data_dir):
    with OpenAIServer(SCRIPT) as server:
        server.fail_next = [429, 503]
        with secgpt(launcher, _http_llm(server)) as hub:
            assert METRO in hub.answer(Q_ONE).text


def test_failure_is_one_line_and_session_goes_on(launcher, data_dir):
    with OpenAIServer(SCRIPT) as server:
        with secgpt(launcher, _http_llm(server)) as hub:
            server.fail_next = [500] * 3
            failed = hub.answer(Q_ONE)
            assert failed.text.startswith("Sorry, the LLM call failed") and "\n" not in failed.text
            assert METRO in hub.answer(Q_ONE).text


def _chat(*args: str, stdin: str, env_extra: dict, data_dir) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "SECGPT_"))}
    env.update(SECGPT_DATA_DIR=str(data_dir), **env_extra)
    return subprocess.run([sys.executable, *args], input=stdin, capture_output=True, text=True, timeout=120,
                          cwd=paths.REPO_ROOT, env=env)


def test_chat_without_llm_explains_and_exits_nonzero(launcher, data_dir):
    result = _chat("secgpt_main.py", stdin="hello\n", env_extra={}, data_dir=data_dir)
    assert result.returncode == 2 and "No LLM is configured" in result.stderr and "--llm scripted" in result.stderr


@pytest.mark.parametrize("program,name", [("secgpt_main.py", "SecGPT"), ("vanillagpt_main.py", "VanillaGPT")])
def test_chat_from_a_pipe(launcher, data_dir, program, name):
    queries = "How much is a metro_hail ride from Main Street to Elm Avenue?\n/perms\n/apps\n/help\n/bogus\n"
    result = _chat(program, "--llm", "scripted", stdin=queries, env_extra={}, data_dir=data_dir)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "You: How much is a metro_hail ride" in out and f"{name}: MetroHail fare" in out and METRO in out
    assert "/exit" in out and "unknown command /bogus" in out and "metro_hail: MetroHail" in out
    if name == "SecGPT":
        # the grant is now bound to the planned functionality: "exec <app> (<functionality>)"
        assert "[permission] exec metro_hail (metro_hail): allowed (policy:expected" in out
    _no_leftovers(data_dir)


def _no_leftovers(data_dir) -> None:
    """No zygote but this test session's own, no Redis serving the chat's data directory."""
    for line in subprocess.run(["ps", "-eo", "pid=,ppid=,args="], capture_output=True, text=True).stdout.splitlines():
        pid, ppid, args = line.split(None, 2)
        if "helpers.sandbox.zygote import main" in args:
            assert int(ppid) == os.getpid(), f"a zygote was left behind: {line}"
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            continue
        assert not cwd.startswith(str(data_dir)), f"a process was left behind in the data directory: {line}"


# --- provider errors: a fixed category to the spoke, the detail (redacted) to the audit log ----------

KEY = "sk-live-Zq8vK2mN4pR7tX1wY5bC9dF3gH6jL0"
HI = [ChatMessage(role="user", content="hi")]


class EchoingProvider:
    """An OpenAI-compatible endpoint that fails with ``status`` and writes the request's
    Authorization header into its error body (as misconfigured proxies and some servers do)."""

    def __init__(self, status: int = 401, delay: float = 0.0) -> None:
        import http.server
        import threading
        import time
        provider = self

        class Handler(QuietHandler):
            def do_POST(self):  # noqa: N802
                self.rfile.read(int(self.headers["content-length"]))
                time.sleep(provider.delay)
                self.send_json(provider.status, {"error": {
                    "message": f"Invalid credentials: {self.headers.get('authorization')}",
                    "type": "invalid_request_error"}})
        self.status, self.delay = status, delay
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def model(self, timeout: float = 10):
        """The provider's LangChain model, as a raw client (no adapter)."""
        from langchain_openai import ChatOpenAI
        return ChatOpenAI(model="m", base_url=self.base_url, api_key=KEY, max_retries=0, timeout=timeout)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def echoing_provider():
    provider = EchoingProvider()
    yield provider
    provider.close()


def test_control_the_providers_error_text_holds_the_key(echoing_provider):
    """Control: the raw exception a client raises carries the whole key."""
    with pytest.raises(Exception) as info:
        echoing_provider.model().invoke("hello")
    assert KEY in str(info.value)


def test_spoke_gets_a_category_never_the_providers_text(launcher, data_dir, echoing_provider):
    from tests.hub_harness import ASK_LLM, operator_world
    with operator_world(launcher, data_dir, model=LangChainModel(echoing_provider.model())) as world:
        outcome, _ = world.run(ASK_LLM.format(n=1, size=10))
        assert outcome.response["stdout"] == "llm_error\nthe LLM call failed: auth_failed (401)\n"
        log = world.audit.path.read_text()
        assert KEY not in log and KEY[:12] not in log  # not in what went to the spoke, not in the detail either
        [failure] = world.events("llm_error")
        assert failure["category"] == "auth_failed" and failure["status"] == 401
        assert "Invalid credentials: Bearer [redacted]" in failure["detail"]


def test_user_sees_the_category_only(launcher, data_dir, echoing_provider):
    with secgpt(launcher, LLMConfig(provider="openai", model="m", base_url=echoing_provider.base_url,
                                    api_key=SecretStr(KEY), timeout_s=10, max_retries=0)) as hub:
        text = hub.answer(Q_ONE).text
    assert text == "Sorry, the LLM call failed: auth_failed (401)."


@pytest.mark.parametrize("status,category", [(400, "bad_request"), (401, "auth_failed"), (403, "auth_failed"),
                                             (404, "bad_request"), (429, "rate_limited"), (500, "provider_error"),
                                             (503, "provider_error")])
def test_statuses_become_categories(status, category):
    provider = EchoingProvider(status)
    try:
        with pytest.raises(LLMError) as info:
            LLMClient(LangChainModel(provider.model())).complete(HI)
    finally:
        provider.close()
    assert str(info.value) == f"the LLM call failed: {category} ({status})"
    assert info.value.__cause__ is None and info.value.__context__ is None  # the provider's exception is not kept


def test_timeouts_and_refused_connections_become_categories():
    import socket
    slow = EchoingProvider(200, delay=3)
    try:
        with pytest.raises(LLMError, match=r"^the LLM call failed: timeout$"):
            LLMClient(LangChainModel(slow.model(timeout=0.5))).complete(HI)
    finally:
        slow.close()
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    from langchain_openai import ChatOpenAI
    closed = ChatOpenAI(model="m", base_url=f"http://127.0.0.1:{port}/v1", api_key=KEY, max_retries=0, timeout=5)
    with pytest.raises(LLMError, match=r"^the LLM call failed: connection$"):
        LLMClient(LangChainModel(closed)).complete(HI)


@pytest.mark.parametrize("text", [f"key {KEY} was refused", "Authorization: Bearer abc.def-123", "api_key=hunter22x",
                                  '{"x-api-key": "k-1234567"}', "token: 0123456789abcdef0123456789abcdef01"])
def test_credentials_are_redacted_from_the_detail(text):
    from tests.hub_harness import echo_model
    redacted = LLMClient(echo_model()).redact(text)
    assert "[redacted]" in redacted
    assert not any(secret in redacted for secret in (KEY, "abc.def-123", "hunter22x", "k-1234567", "0123456789abcdef0"))
