"""One base for the small HTTP servers the tests start on 127.0.0.1: a handler that
answers with a body of known length and keeps the server's log quiet."""

from __future__ import annotations

import http.server
import json


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
