"""Runs in: vanillagpt.

VanillaGPT: the baseline SecGPT is compared against.

One process, one LLM agent, one memory: every installed app's functionalities
and descriptions (and every enabled annotation) share a single context, and app
code runs in this process. Same apps, same LLM configuration, same memory
upkeep as SecGPT, so the only difference is isolation.
"""

from __future__ import annotations

import importlib
import itertools
import os
from collections.abc import Callable
from pathlib import Path

from helpers.configs import paths
from helpers.isc.messages import ErrorMessage, HttpResponse, ToolSpec, http_request
from helpers.llm.agent import AgentTool, local_tool, run_agent
from helpers.llm.client import LLMClient
from helpers.llm.config import LLMConfig
from helpers.llm.interface import ChatModel, chat_history
from helpers.llm.models import make_chat_model
from helpers.memory.extraction import remember_turn
from helpers.memory.redis_server import MemoryBackend
from helpers.memory.store import MemoryStore
from helpers.sandbox.http_broker import HttpBroker
from helpers.templates import prompts
from helpers.tools.app_module import app_functions
from helpers.tools.mcp import client as mcp_client
from helpers.tools.mcp.client import McpConnection
from helpers.tools.mcp.link import McpServer
from helpers.tools.tool_importer import ToolImporter
from helpers.utilities.errors import LLMError, MemoryUnavailable
from helpers.utilities.failures import failure_of
from helpers.utilities.session import Answer, PermissionRecord, SessionInfo, SessionStats
from helpers.utilities.text import as_text

NAMESPACE = "vanillagpt"


class _InProcessHub:
    """The app's door to the hub, in VanillaGPT: what app code gets as its ``hub`` argument. The
    same interface as a spoke's door (spoke/spoke_operator.py), served in this process; the same
    per-app egress rule is applied, so both systems reach the same hosts."""

    def __init__(self, app: str, settings: dict[str, str], allowed: frozenset[str], http: HttpBroker) -> None:
        self.app = app
        self.settings = settings
        self._allowed, self._http = allowed, http
        self._ids = itertools.count(1)

    def http(self, method: str, url: str, *, headers: dict[str, str] | None = None,
             body: bytes | str | None = None) -> HttpResponse | ErrorMessage:
        request = http_request(next(self._ids), method, url, headers, body)
        return self._http.serve(self.app, request, self._allowed, self.settings)[1]


class VanillaGPT:
    """VanillaGPT's ``Session`` (helpers/utilities/session.py)."""

    def __init__(self, llm: LLMConfig, user_id: str = "0", functionalities: Path | None = None,
                 redis_url: str | None = None, emit: Callable[[str, str], None] | None = None,
                 importer: ToolImporter | None = None, http: HttpBroker | None = None,
                 chat_model: ChatModel | None = None) -> None:
        self.user = str(user_id)
        self.importer = importer or (ToolImporter(functionalities) if functionalities else ToolImporter())
        self.llm = LLMClient(chat_model or make_chat_model(llm))  # no hub: no budget, no audit log
        self.emit = emit or (lambda kind, text: None)
        self._memory_backend = MemoryBackend(redis_url)
        self.memory: MemoryStore | None = None
        self.http = http or HttpBroker()
        self._mcp: list[McpConnection] = []  # MCP servers, connected (and their pins checked) at start
        self.tools = self._load_tools()

    def start(self) -> VanillaGPT:
        self.memory = MemoryStore(self._memory_backend.start(), self.user)
        return self

    def close(self) -> None:
        for connection in self._mcp:
            connection.close()
        self._memory_backend.close()
        self.http.close()

    def __enter__(self) -> VanillaGPT:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def cancel(self) -> None:
        """Nothing runs outside this process, so there is nothing to stop."""

    # --- what the session tells its callers (the Session interface) ---------------------------------------
    @property
    def info(self) -> SessionInfo:
        return SessionInfo(system="VanillaGPT", isolation=None, asks_permissions=False, plans=False)

    def stats(self) -> SessionStats:
        return SessionStats(llm_calls=self.llm.calls, prompt_chars=self.llm.prompt_chars)

    def permission_log(self) -> list[PermissionRecord]:
        return []  # every app may do everything: nothing is ever asked

    def llm_contexts(self) -> dict[str, list[str]]:
        return {}  # no spokes: every app shares the one context

    def grants(self) -> dict[str, dict[str, str]]:
        return {}

    def revoke(self, key: str, category: str | None = None) -> bool:
        return False

    def _load_tools(self) -> list[AgentTool]:
        tools: list[AgentTool] = []
        for app in self.importer.apps.values():
            if app.manifest.is_annotation:
                continue  # an annotation app: its text goes into the one shared system prompt
            app_dir = paths.app_data_dir(app.name)
            spec = self.importer.app_spec(app.name)
            hub = _InProcessHub(app.name, app.settings, spec.allowed_domains, self.http)
            if app.manifest.mcp is not None:
                functions = self._connect_mcp(app.name, app.manifest.mcp, hub, app_dir,
                                              list(app.functionalities.values()))
            else:
                functions = app_functions(importlib.import_module(app.manifest.module), list(app.functionalities),
                                          app.settings)
            for f in app.functionalities.values():
                function = functions[f.name]

                def run(args: dict, fn=function, where=app_dir, hub=hub):
                    where.mkdir(parents=True, exist_ok=True)
                    previous = os.getcwd()
                    os.chdir(where)  # same working directory an app has in its spoke
                    try:
                        return fn(args, hub)
                    finally:
                        os.chdir(previous)
                description = f"{f.description} (app {app.name}: {app.manifest.description})"
                tools.append(local_tool(f.name, description, f.request_schema, f.response_schema, run))
        tools.append(AgentTool(ToolSpec(name=prompts.RECALL_TOOL, description=prompts.RECALL_DESCRIPTION,
                                        parameters={"type": "object", "properties": {}}),
                               lambda args: as_text(self.memory.entities(NAMESPACE) if self.memory else {})))
        return tools

    def _connect_mcp(self, app: str, link: McpServer, hub: _InProcessHub, where: Path,
                     functionalities: list) -> dict[str, Callable]:
        """The same client as in a spoke, in this process: a Python server runs here, a command as a
        plain subprocess, a remote server through the same egress rule; the pin is checked alike."""
        where.mkdir(parents=True, exist_ok=True)
        previous = os.getcwd()
        os.chdir(where)  # the server starts where it would in its spoke: its app's own directory
        try:
            connection, functions = mcp_client.connect(app, link, hub, functionalities)
        finally:
            os.chdir(previous)
        self._mcp.append(connection)
        return functions

    def system_prompt(self) -> str:
        apps = "\n".join(f"- {a.name}: {a.manifest.description}" for a in self.importer.apps.values())
        annotations = " ".join(a.annotation for a in self.importer.apps.values() if a.annotation)
        return prompts.VANILLAGPT.format(apps=apps or "(none)", annotations=annotations).strip()

    def answer(self, query: str) -> Answer:
        if self.memory is None:
            raise RuntimeError("call start() first")
        try:
            history = chat_history(self.memory.context(NAMESPACE))
            run = run_agent(self.llm.model_for("vanillagpt"), self.system_prompt(), history, query, self.tools)
            for name, args, result in run.tool_calls:
                self.emit("call", f"{name}({args}) -> {result[:200]}")
            remember_turn(self.memory, NAMESPACE, self.llm.model_for("memory"), query, run.answer)
            return Answer(run.answer, route="vanillagpt")
        except (LLMError, MemoryUnavailable) as exc:
            # App code runs in this process: an app that crashes takes VanillaGPT down with it, so
            # an LLM or memory failure is all an answer can report here.
            error = failure_of(exc)
            self.emit("error", str(error))
            return Answer(f"Sorry, {exc}.", notes=[str(exc)], error=error)

