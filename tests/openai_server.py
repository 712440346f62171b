"""A local OpenAI-compatible chat-completions server for tests, on 127.0.0.1.

It answers with the scripted model (or any ChatModel), so tests drive the real
langchain-openai client over real HTTP (tool calls included). It can also fail on purpose
(429/500) to exercise retries and error reporting, now or after some answers.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
from pathlib import Path

from helpers.isc.messages import ChatMessage, ToolCall, ToolSpec
from helpers.llm.interface import ChatModel
from helpers.llm.scripted import Script, ScriptedChatModel
from tests.http_helpers import QuietHandler


def _messages(items: list[dict]) -> list[ChatMessage]:
    """The request's chat.completions messages, as the project's."""
    out = []
    for m in items:
        content = m.get("content") or ""
        if m["role"] in ("system", "developer"):
            out.append(ChatMessage(role="system", content=content))
        elif m["role"] == "user":
            out.append(ChatMessage(role="user", content=content))
        elif m["role"] == "tool":
            out.append(ChatMessage(role="tool", content=content, tool_call_id=m["tool_call_id"]))
        else:
            calls = [ToolCall(id=c["id"], name=c["function"]["name"],
                              args=json.loads(c["function"]["arguments"] or "{}")) for c in m.get("tool_calls") or []]
            out.append(ChatMessage(role="assistant", content=content, tool_calls=calls))
    return out


class OpenAIServer:
    def __init__(self, script: Path | None = None, model: ChatModel | None = None) -> None:
        """Answers with ``model``, else the scripted model of ``script``."""
        self.model = model if model is not None else ScriptedChatModel(script=Script.load(script))
        self.requests: list[dict] = []
        self.fail_next: list[int] = []  # statuses to answer before answering normally
        self.fail_after: int | None = None  # answer this many requests, then fail every later one
        self.fail_status = 500  # ... with this status
        self.delay = threading.Event()  # while set, requests wait (a slow model) until it is cleared
        self.waiting = threading.Event()  # set when a request is waiting on ``delay``
        server = self

        class Handler(QuietHandler):
            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                server.requests.append({"path": self.path, "auth": self.headers.get("authorization"), **body})
                while server.delay.is_set():
                    server.waiting.set()
                    time.sleep(0.01)
                if server.fail_after is not None and len(server.requests) > server.fail_after:
                    server.fail_next.append(server.fail_status)
                if server.fail_next:
                    self.send_json(server.fail_next.pop(0), {"error": {"message": "try later", "type": "test"}})
                    return
                tools = [ToolSpec(name=t["function"]["name"], description=t["function"].get("description", ""),
                                  parameters=t["function"].get("parameters", {})) for t in body.get("tools", [])]
                message = self.server_model.complete(_messages(body["messages"]), tools)
                calls = [{"id": c.id, "type": "function", "function": {"name": c.name, "arguments": json.dumps(c.args)}}
                         for c in message.tool_calls]
                self.send_json(200, {
                    "id": "chatcmpl-test", "object": "chat.completion", "created": 0, "model": body["model"],
                    "choices": [{"index": 0, "finish_reason": "tool_calls" if calls else "stop",
                                 "message": {"role": "assistant", "content": message.content or None,
                                             **({"tool_calls": calls} if calls else {})}}],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})

            server_model = self.model

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def __enter__(self) -> OpenAIServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
