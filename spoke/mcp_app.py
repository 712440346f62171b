"""Runs in: zygote, spoke (an MCP app's spoke, next to its server's code or its pipes).

The spoke's side of an MCP app: the server is connected on first use, not while the spoke
starts, because connecting may need the hub's egress (a remote server; a Python server
that fetches at start), which the hub serves only once the spoke is ready. A server that
fails to connect, or whose tools are not the pinned ones, leaves the app refused for the
spoke's life: every request gets the same one-line reason.
"""

from __future__ import annotations

from collections.abc import Callable

from helpers.isc.control import SpokeProfile
from helpers.isc.messages import ErrorMessage, McpListResponse, McpTool
from helpers.tools.mcp import client
from helpers.tools.mcp.client import McpConnection
from helpers.tools.mcp.link import pinned_tools
from helpers.utilities.errors import SecGPTError
from spoke.spoke_operator import SpokeOperator


class McpApp:
    def __init__(self, profile: SpokeProfile, hub: SpokeOperator) -> None:
        if profile.mcp is None:
            raise ValueError("not an MCP app")
        self.profile, self.link, self.hub = profile, profile.mcp, hub
        self._functions: dict[str, Callable] | None = None
        self._connection: McpConnection | None = None
        self._refused: str | None = None
        self._live: list[McpTool] = []

    def _pipes(self) -> tuple[int, int] | None:
        if self.link.command is None:
            return None
        from helpers.sandbox import server_process
        pipes = server_process.take()
        if pipes is None:
            raise SecGPTError(f"{self.profile.app}: the sandbox started no server process for this command "
                              "server; the hub's launcher must name it (AppSpec.server_command)")
        return pipes.stdout_fd, pipes.stdin_fd

    def _open(self) -> tuple[McpConnection, list[McpTool]]:
        if self._connection is None:
            connection = McpConnection(self.profile.app, self.link, self.hub, self._pipes())
            self._live = connection.open()
            self._connection = connection
        return self._connection, self._live

    def functionalities(self) -> dict[str, Callable] | ErrorMessage:
        """The app's functionalities, connecting (and checking the pin) the first time."""
        if self._functions is None and self._refused is None:
            profiles = list(self.profile.functionalities)
            try:
                connection, live = self._open()
                client.check_pin(self.profile.app, self.link, live, pinned_tools(self.link, profiles))
                self._functions = client.functionalities(connection, profiles)
            except Exception as exc:  # noqa: BLE001 - the server is untrusted code; say what it did
                self._refused = _reason(exc)
        if self._refused is not None or self._functions is None:
            return ErrorMessage(code="app_error", message=f"MCP server refused: {self._refused}"[:4000])
        return self._functions

    def listing(self, request_id: int) -> McpListResponse | ErrorMessage:
        """The server's tools as it listed them on connecting, unchecked (installing the app, or
        checking it for changes)."""
        try:
            connection, live = self._open()
        except Exception as exc:  # noqa: BLE001 - the server is untrusted code; say what it did
            return ErrorMessage(id=request_id, code="app_error", message=f"MCP server: {_reason(exc)}"[:4000])
        return McpListResponse(id=request_id, server=connection.server_name[:256], tools=live)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()


def _reason(exc: Exception) -> str:
    return str(exc) if isinstance(exc, SecGPTError) else f"{type(exc).__name__}: {exc}"
