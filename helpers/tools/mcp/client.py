"""Runs in: zygote, spoke, vanillagpt (the MCP client, next to the server's code or its pipes).

One MCP app's connection to its server, through the MCP SDK's own client (``mcp.Client``).

The client runs in a thread of its own with its own event loop, so the app's
functionalities stay plain calls ``(request, hub) -> value`` like every other app's. The
server is reached as its link says (``link.McpServer``):
* ``python``: the factory is imported and called here, and the SDK connects to the server
  object in-process. In a spoke that is the app's own confined process.
* ``command``: in a spoke, the pipes of the server process the sandbox started before the
  spoke confined itself (``helpers.sandbox.server_process``; the spoke itself can start no
  process); in VanillaGPT, the SDK starts the command as a plain subprocess.
* ``url``: the SDK's streamable HTTP client, whose requests go to the hub (``egress``).
Every HTTP request made under the client's thread goes through the app's door to the hub.

Before any tool is used the live tool list is compared with the pin; a difference refuses
the app, naming what changed. The tools the agent sees are the installed ones, never the
live list.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future
from typing import Any

from helpers.isc.messages import McpTool
from helpers.tools.mcp import egress
from helpers.tools.mcp.link import RESPONSE_TEXT_SCHEMA, UNPINNED, McpServer, changes, pinned_tools, tools_digest
from helpers.utilities.errors import ConfigError

CONNECT_TIMEOUT_S = 60.0
MAX_LINE = 8 * 1024 * 1024  # one JSON-RPC message from a command server
MAX_TOOLS = 256


class McpChanged(ConfigError):
    """The server's live tools differ from the ones installed (and approved)."""


class McpConnection:
    """One open session with an app's MCP server. ``tools``: the live list, checked against the pin."""

    def __init__(self, app: str, link: McpServer, door: egress.Door,
                 pipes: tuple[int, int] | None = None, timeout: float = CONNECT_TIMEOUT_S) -> None:
        self.app, self.link, self.door, self.timeout = app, link, door, timeout
        self._pipes = pipes  # (read end of its stdout, write end of its stdin): a command server in a spoke
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: Any = None
        self._ready: Future[list[McpTool]] = Future()
        self._stop: asyncio.Event | None = None
        self.server_name = ""
        self._thread = threading.Thread(target=self._run, name=f"mcp-{app}", daemon=True)

    # --- life cycle -------------------------------------------------------------------------------
    def open(self) -> list[McpTool]:
        """Connect and list the tools (the live list: compare it with the pin before use)."""
        self._thread.start()
        try:
            return self._ready.result(self.timeout)
        except TimeoutError as exc:
            raise ConfigError(f"MCP server of {self.app} ({self.link.describe()}) did not answer within "
                              f"{self.timeout:g}s; check that it starts on its own") from exc

    def close(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=5)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # noqa: BLE001 - handed to the caller of open()
            if not self._ready.done():
                self._ready.set_exception(exc if isinstance(exc, Exception) else RuntimeError(repr(exc)))

    async def _main(self) -> None:
        from mcp import Client
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        with egress.through(self.door):
            async with Client(self._target(), read_timeout_seconds=self.timeout) as client:
                self._client = client
                info = client.server_info
                self.server_name = info.name if info is not None else ""
                self._ready.set_result(await _list_tools(client))
                await self._stop.wait()

    def _target(self) -> Any:
        link = self.link
        if link.python:
            module, _, factory = link.python.partition(":")
            server = getattr(importlib.import_module(module), factory)(*link.args)
            return server
        if link.command:
            if self._pipes is not None:
                return _fd_transport(*self._pipes)
            from mcp import StdioServerParameters
            return StdioServerParameters(command=link.command[0], args=link.command[1:], env=dict(link.env),
                                         cwd=os.getcwd())
        from mcp.client.streamable_http import streamable_http_client
        return streamable_http_client(link.url or "", http_client=egress.async_client(self.door))

    # --- use ----------------------------------------------------------------------------------------
    def call(self, tool: str, arguments: dict[str, Any]) -> Any:
        """Call a tool and return its result as a JSON value: the structured result where the
        tool declares an output schema, else its text. A tool's own error raises ToolFailed."""
        if self._loop is None or self._client is None:
            raise RuntimeError(f"the MCP server of {self.app} is not connected")

        async def run() -> Any:
            with egress.through(self.door):
                return await self._client.call_tool(tool, arguments)
        result = asyncio.run_coroutine_threadsafe(run(), self._loop).result(self.timeout)
        return result_value(result)


class ToolFailed(Exception):
    """The server answered the call with an error result (its own text, untrusted)."""


def result_value(result: Any) -> Any:
    text = "\n".join(block.text for block in result.content if getattr(block, "type", "") == "text")
    if result.is_error:
        raise ToolFailed(text[:4000] or "the tool reported an error")
    if result.structured_content is not None:
        return result.structured_content
    others = [getattr(block, "type", "?") for block in result.content if getattr(block, "type", "") != "text"]
    if others:
        text += "".join(f"\n[{kind} content not shown]" for kind in others)
    return text


async def _list_tools(client: Any) -> list[McpTool]:
    tools: list[McpTool] = []
    cursor = None
    while True:
        page = await client.list_tools(cursor=cursor)
        tools += [McpTool(name=t.name, description=t.description or "", input_schema=dict(t.input_schema),
                          output_schema=dict(t.output_schema) if t.output_schema is not None else None)
                  for t in page.tools]
        cursor = page.next_cursor
        if cursor is None:
            return tools
        if len(tools) > MAX_TOOLS:
            raise ConfigError(f"the MCP server lists more than {MAX_TOOLS} tools; SecGPT installs at most {MAX_TOOLS}")


def check_pin(app: str, link: McpServer, live: list[McpTool], pinned: dict[str, McpTool]) -> None:
    """Refuse a server whose live tools are not the installed ones."""
    if link.tools_sha256 == UNPINNED:
        raise McpChanged(f"{app}: the MCP server has no pinned tool list; install it with "
                         f"python -m hub.mcp_apps add {app} ...")
    if tools_digest(live) != link.tools_sha256:
        what = "; ".join(changes(pinned, live)[:5]) or "the tool list differs from the one installed"
        raise McpChanged(f"{app}: its MCP server changed its tools since installation ({what}); refused. "
                         f"Review the change, then run: python -m hub.mcp_apps add {app} --update")


def functionalities(connection: McpConnection, profiles: list[Any]) -> dict[str, Callable]:
    """The app's functionalities: each calls its tool on the open connection. A tool's error is
    its text answer where the tool answers text, else a failed call (an object cannot say it)."""
    def make(name: str, text: bool) -> Callable:
        tool = connection.link.tool_name(name)

        def call(request: dict, hub: Any) -> Any:
            try:
                return connection.call(tool, request)
            except ToolFailed as exc:
                if text:
                    return f"Error from {tool}: {exc}"
                raise
        return call
    return {f.name: make(f.name, f.response_schema == RESPONSE_TEXT_SCHEMA) for f in profiles}


@contextlib.asynccontextmanager
async def _fd_transport(read_fd: int, write_fd: int) -> AsyncIterator[Any]:
    """The SDK's stdio framing (one JSON-RPC message per line) over two already open pipes."""
    import anyio
    import mcp_types
    from mcp.shared.message import SessionMessage

    incoming_send, incoming = anyio.create_memory_object_stream[Any](0)
    outgoing, outgoing_receive = anyio.create_memory_object_stream[Any](0)
    reader = os.fdopen(read_fd, "rb", buffering=0)
    writer = os.fdopen(write_fd, "wb", buffering=0)

    async def read_lines() -> None:
        buffer = b""
        async with incoming_send:
            while True:
                chunk = await anyio.to_thread.run_sync(reader.read, 65536, abandon_on_cancel=True)
                if not chunk:
                    return
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                if len(buffer) > MAX_LINE:
                    await incoming_send.send(ValueError(f"the server sent a line over {MAX_LINE} bytes"))
                    return
                for line in lines:
                    if line.strip():
                        try:
                            message = mcp_types.jsonrpc_message_adapter.validate_json(line, by_name=False)
                        except ValueError as exc:
                            await incoming_send.send(exc)
                            continue
                        await incoming_send.send(SessionMessage(message))

    async def write_lines() -> None:
        async with outgoing_receive:
            async for item in outgoing_receive:
                data = item.message.model_dump_json(by_alias=True, exclude_unset=True).encode() + b"\n"
                await anyio.to_thread.run_sync(writer.write, data)

    async with anyio.create_task_group() as group:
        group.start_soon(read_lines)
        group.start_soon(write_lines)
        try:
            yield incoming, outgoing
        finally:
            group.cancel_scope.cancel()
            with contextlib.suppress(OSError):
                writer.close()
            with contextlib.suppress(OSError):
                reader.close()


def connect(app: str, link: McpServer, door: egress.Door, profiles: list[Any],
            pipes: tuple[int, int] | None = None) -> tuple[McpConnection, dict[str, Callable]]:
    """Open the app's server, check its pin, and return the connection and its functionalities."""
    connection = McpConnection(app, link, door, pipes)
    live = connection.open()
    try:
        check_pin(app, link, live, pinned_tools(link, profiles))
    except McpChanged:
        connection.close()
        raise
    return connection, functionalities(connection, profiles)
