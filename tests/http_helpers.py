"""HTTP doubles for the tests: one base for the small servers they start on 127.0.0.1 (a
handler that answers with a body of known length and keeps the server's log quiet), a
stand-in network for a broker's replaced transport, and resolvers that say where a name points
(the egress check still applies to a replaced transport: its names must resolve somewhere)."""

from __future__ import annotations

import http.server
import json
from collections.abc import Sequence

import httpx

# A public address (``ipaddress`` says is_global): where the names of a replayed network point.
# The documentation ranges (192.0.2.0/24, ...) are not global, so the egress check refuses them.
PUBLIC_ADDRESS = "93.184.215.14"


class QuietHandler(http.server.BaseHTTPRequestHandler):
    def send_body(self, status: int, body: bytes, content_type: str | None = None,
                  headers: tuple[tuple[str, str], ...] = ()) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        if content_type:
            self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def send_json(self, status: int, payload, headers: tuple[tuple[str, str], ...] = ()) -> None:
        self.send_body(status, json.dumps(payload).encode(), "application/json", headers)

    def log_message(self, *args) -> None:
        pass


def resolving_to(*addresses: str):
    """A resolver (``HttpBroker(resolver=...)``) that answers ``addresses`` for every name."""
    def resolve(host: str, port: int) -> Sequence[str]:
        return addresses
    return resolve


public_resolver = resolving_to(PUBLIC_ADDRESS)


def echo_network(request: httpx.Request) -> httpx.Response:
    """Stands for the network (a transport for ``httpx.MockTransport``): example.org answers with
    what it was sent, every other host fails."""
    if request.url.host.endswith("example.org"):
        return httpx.Response(200, json={"method": request.method, "body": request.content.decode()})
    return httpx.Response(599, text="no network in tests")
