"""Runs in: hub, zygote, spoke, vanillagpt.

How an app reaches its MCP server (the manifest's ``"mcp"`` block), and the pin.

A server is one of: a Python server run in the app's own process (``python``: a factory
``package.module:function`` returning an SDK server object, called with ``args``), a
command (``command``: an executable and its arguments, a stdio server in any language), or
a remote server (``url``: streamable HTTP, reached through the hub's egress only).

The pin is a SHA-256 over the tool list as it was at installation: every tool's name,
description and schemas. Everything an LLM is shown about the server's tools comes from
the installed files, never from the live server; a server whose live list differs from
its pin is refused (a "rug pull": the vendor changes a tool's text or shape after the user
approved it). The pin is computed by this module alone, so the installer and the runtime
cannot disagree about it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from helpers.isc.messages import NAME_PATTERN, McpTool

FACTORY_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$"
UNPINNED = ""  # a link being installed: its tools are listed, never called


class McpServer(BaseModel):
    """The manifest's ``"mcp"`` block. Exactly one of ``python``, ``command``, ``url``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    python: str | None = Field(default=None, pattern=FACTORY_PATTERN, max_length=200)
    args: list[str] = Field(default_factory=list, max_length=32)  # the factory's positional arguments
    command: list[str] | None = Field(default=None, min_length=1, max_length=64)
    env: dict[str, str] = Field(default_factory=dict)  # a command server's whole environment
    url: str | None = Field(default=None, pattern=r"^https?://", max_length=2000)
    # functionality name -> the server's tool name, where the tool's name is not a valid one
    # (MCP allows "-" and "."; SecGPT's names are letters, digits and "_").
    tool_names: dict[str, str] = Field(default_factory=dict)
    tools_sha256: str = Field(default=UNPINNED, pattern=r"^([0-9a-f]{64})?$")

    @model_validator(mode="after")
    def _one_kind(self) -> McpServer:
        kinds = [k for k in ("python", "command", "url") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(f"give exactly one of python, command, url (got {', '.join(kinds) or 'none'})")
        if self.args and self.python is None:
            raise ValueError("args are a python server's factory arguments; a command takes its own in command")
        if self.env and self.command is None:
            raise ValueError("env is a command server's environment; only a command has one")
        if self.command is not None and not self.command[0].startswith("/"):
            raise ValueError(f"command: {self.command[0]!r} must be an absolute path (write the full path, "
                             "e.g. from `which`): a search of PATH could find another program")
        return self

    @property
    def kind(self) -> str:
        return "python" if self.python else "command" if self.command else "url"

    def describe(self) -> str:
        if self.python:
            return f"Python server {self.python}({', '.join(map(repr, self.args))})"
        if self.command:
            return "command " + " ".join(self.command)
        return f"remote server {self.url}"

    def tool_name(self, functionality: str) -> str:
        return self.tool_names.get(functionality, functionality)

    def pinned(self, tools: list[McpTool]) -> McpServer:
        """This link with the pin and names of ``tools`` (the installer's)."""
        return self.model_copy(update={"tools_sha256": tools_digest(tools), "tool_names": functionality_names(tools)})


def _canonical(tool: McpTool) -> dict[str, Any]:
    return {"name": tool.name, "description": tool.description, "input_schema": tool.input_schema,
            "output_schema": tool.output_schema}


def tools_digest(tools: list[McpTool]) -> str:
    """The pin: SHA-256 of the tool list in a canonical form (sorted by name; JSON with sorted keys)."""
    listing = [_canonical(t) for t in sorted(tools, key=lambda t: t.name)]
    return hashlib.sha256(json.dumps(listing, sort_keys=True, separators=(",", ":"),
                                     ensure_ascii=True).encode()).hexdigest()


def functionality_name(tool: str) -> str:
    """The SecGPT name of an MCP tool: its own where valid, else with each other character as "_"."""
    if re.fullmatch(NAME_PATTERN, tool):
        return tool
    name = re.sub(r"[^A-Za-z0-9_]", "_", tool)
    name = name if name[:1].isalpha() else f"t_{name}"
    return name[:64]


def functionality_names(tools: list[McpTool]) -> dict[str, str]:
    """functionality -> tool, for the tools whose names had to change (refused if two collide)."""
    renamed: dict[str, str] = {}
    seen: dict[str, str] = {}
    for tool in tools:
        name = functionality_name(tool.name)
        if name in seen:
            raise ValueError(f"the server's tools {seen[name]!r} and {tool.name!r} would both be called {name!r}")
        seen[name] = tool.name
        if name != tool.name:
            renamed[name] = tool.name
    return renamed


def changes(pinned: dict[str, McpTool], live: list[McpTool]) -> list[str]:
    """What differs between the installed tools and the live list, in a few words each."""
    found: list[str] = []
    now = {t.name: t for t in live}
    for name in sorted(set(pinned) | set(now)):
        before, after = pinned.get(name), now.get(name)
        if before is None:
            found.append(f"new tool {name!r}")
        elif after is None:
            found.append(f"tool {name!r} removed")
        else:
            fields = [f for f in ("description", "input_schema", "output_schema")
                      if getattr(before, f) != getattr(after, f)]
            if fields:
                found.append(f"{name!r}: {', '.join(fields)} changed")
    return found


RESPONSE_TEXT_SCHEMA: dict[str, Any] = {"type": "string", "description": "The tool's text result."}


def response_schema(tool: McpTool) -> dict[str, Any]:
    """What the hub checks the tool's result against: its output schema, else text."""
    return tool.output_schema if tool.output_schema is not None else RESPONSE_TEXT_SCHEMA


def pinned_tools(link: McpServer, functionalities: Iterable[Any]) -> dict[str, McpTool]:
    """The installed tools as the pin saw them, from the app's functionalities (anything with a
    name, description, request_schema and response_schema), by the server's tool name."""
    tools = {}
    for f in functionalities:
        name = link.tool_name(f.name)
        output = None if f.response_schema == RESPONSE_TEXT_SCHEMA else f.response_schema
        tools[name] = McpTool(name=name, description=f.description, input_schema=f.request_schema,
                              output_schema=output)
    return tools
