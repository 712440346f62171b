"""Runs in: zygote, spoke, vanillagpt (beside an MCP server's code and the MCP client).

HTTP of an MCP app goes through its door to the hub (``hub.http``), never to the network.

Both HTTP libraries an MCP app uses are covered: ``httpx`` (what servers such as
mcp-server-fetch use) and ``httpx2`` (the SDK's own client, for a remote server). Their
connection-making transports are replaced, for the code that runs inside ``through(door)``
only (a context variable, which asyncio tasks and anyio's worker threads inherit): there,
every request, each redirect hop included, is one ``http_request`` to the hub, which
applies the app's allowed domains and its private-address check. In a spoke nothing else
could reach the network anyway (no network namespace, no inet socket); in VanillaGPT this
gives the same app the same reach. A request the hub refuses raises the library's
``ConnectError`` with the hub's reason.

What it does not cover: HTTP made by other libraries (urllib, requests, raw sockets). In
a spoke those fail (there is no network); in VanillaGPT they reach the network directly.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Iterator
from typing import Any, Protocol

from helpers.isc.messages import ErrorMessage, HttpResponse

# Hop-by-hop and encoding headers of the hub's answer: the hub has already decoded the body.
DROP_HEADERS = frozenset({"content-encoding", "transfer-encoding", "content-length", "connection"})


class Door(Protocol):
    def http(self, method: str, url: str, *, headers: dict[str, str] | None = None,
             body: bytes | str | None = None) -> HttpResponse | ErrorMessage: ...


_door: contextvars.ContextVar[Door | None] = contextvars.ContextVar("secgpt_mcp_door", default=None)
_installed = False
_install_lock = threading.Lock()


@contextlib.contextmanager
def through(door: Door) -> Iterator[None]:
    """Route the HTTP of the code run inside this block (and of what it starts) through ``door``."""
    install()
    token = _door.set(door)
    try:
        yield
    finally:
        _door.reset(token)


def install() -> None:
    """Replace the transports' send methods, once per process; outside ``through`` they behave as before."""
    global _installed
    with _install_lock:
        if _installed:
            return
        import httpx
        _patch(httpx)
        try:
            import httpx2
        except ImportError:  # pragma: no cover - the SDK depends on it
            pass
        else:
            _patch(httpx2)
        _installed = True


def _patch(library: Any) -> None:
    sync_send = library.HTTPTransport.handle_request
    async_send = library.AsyncHTTPTransport.handle_async_request

    def handle_request(self, request):
        door = _door.get()
        if door is None:
            return sync_send(self, request)
        return _forward(library, door, request, request.read())

    async def handle_async_request(self, request):
        door = _door.get()
        if door is None:
            return await async_send(self, request)
        # The door answers synchronously; the server's other tasks wait (one request at a time,
        # as the spoke's one channel to the hub carries one exchange at a time).
        return _forward(library, door, request, await request.aread())

    library.HTTPTransport.handle_request = handle_request
    library.AsyncHTTPTransport.handle_async_request = handle_async_request


def async_client(door: Door) -> Any:
    """An ``httpx2.AsyncClient`` (the SDK's HTTP library) whose every request goes to ``door``. Made
    without the library's own transport, which would read the system's CA files at construction
    (a spoke may not read /etc; TLS is the hub's business)."""
    import httpx2

    class HubTransport(httpx2.AsyncBaseTransport):
        async def handle_async_request(self, request: Any) -> Any:
            return _forward(httpx2, door, request, await request.aread())

    return httpx2.AsyncClient(transport=HubTransport(), trust_env=False)


def _forward(library: Any, door: Door, request: Any, body: bytes) -> Any:
    headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
    token = _door.set(None)  # the door's own HTTP (VanillaGPT's broker, in this process) is the real one
    try:
        reply = door.http(request.method, str(request.url), headers=headers, body=body or None)
    finally:
        _door.reset(token)
    if isinstance(reply, ErrorMessage):
        raise library.ConnectError(f"refused by SecGPT's hub: {reply.message}", request=request)
    content = reply.body.encode() if reply.body_encoding == "utf-8" else _b64(reply.body)
    kept = [(k, v) for k, v in reply.headers.items() if k.lower() not in DROP_HEADERS]
    return library.Response(reply.status, headers=kept, content=content, request=request)


def _b64(text: str) -> bytes:
    import base64
    return base64.b64decode(text)
