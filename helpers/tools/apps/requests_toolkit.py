"""Runs in: spoke, vanillagpt (app code: in its own spoke, or in VanillaGPT's one process).

The requests toolkit: plain HTTP for the LLM, every request through the hub's egress,
which admits only this app's allowed registrable domains. A refusal is a result."""

from __future__ import annotations

import json

from helpers.isc.messages import ErrorMessage

MAX_TEXT = 4000


def _request(method: str, request: dict, hub) -> str:
    data = request.get("data")
    body = json.dumps(data) if isinstance(data, (dict, list)) else data
    headers = {"content-type": "application/json"} if isinstance(data, (dict, list)) else {}
    reply = hub.http(method, request["url"], headers=headers, body=body)
    if isinstance(reply, ErrorMessage):
        return f"Request refused by SecGPT: {reply.message}"
    text = reply.body if reply.body_encoding == "utf-8" else f"({len(reply.body) * 3 // 4} bytes of binary data)"
    return f"HTTP {reply.status}\n{text[:MAX_TEXT]}"


def requests_get(request: dict, hub) -> str:
    return _request("GET", request, hub)


def requests_post(request: dict, hub) -> str:
    return _request("POST", request, hub)


def requests_patch(request: dict, hub) -> str:
    return _request("PATCH", request, hub)


def requests_put(request: dict, hub) -> str:
    return _request("PUT", request, hub)


def requests_delete(request: dict, hub) -> str:
    return _request("DELETE", request, hub)


FUNCTIONALITIES = {f.__name__: f for f in (requests_get, requests_post, requests_patch, requests_put,
                                            requests_delete)}
