"""Runs in: zygote, spoke.

The spoke's side of the hub protocol: ask the hub for something, wait for its answer.

This is the only door an app has to the world. Every method sends one typed
request and returns the hub's typed answer; a refusal comes back as an
``ErrorMessage`` value (a result the app can explain), not an exception.
"""

from __future__ import annotations

import itertools

from helpers.isc.channel import Channel, Violation
from helpers.isc.messages import (
    AppRequest,
    ErrorMessage,
    FunctionProbeRequest,
    HttpRequest,
    HttpResponse,
    LLMRequest,
    MemoryRequest,
    Message,
    http_request,
)
from helpers.utilities.errors import ProtocolError

_ANSWERS = {
    "http_request": ("http_response",),
    "llm_request": ("llm_response",),
    "memory_request": ("memory_response",),
    "function_probe_request": ("function_probe_response", "no_functionality_response",
                               "functionality_denial_response"),
    "app_request": ("app_response", "no_functionality_response", "functionality_denial_response"),
}


class SpokeOperator:
    """The app's door to the hub: what an app's functions get as their ``hub`` argument. Apps use
    ``http``, ``settings`` and ``app``; the spoke's own agent asks the hub through the same door
    (LLM calls, memory, another app's functionality). VanillaGPT gives apps a door with the same
    interface, served in its one process (``vanillagpt.vanillagpt._InProcessHub``)."""

    def __init__(self, channel: Channel, settings: dict[str, str] | None = None, app: str = "") -> None:
        self.channel = channel
        self.app = app  # the name of this spoke's app
        self.settings = dict(settings or {})  # the app's own settings (e.g. which backend)
        self._ids = itertools.count(1)

    def next_id(self) -> int:
        return next(self._ids)

    def request(self, message: HttpRequest | LLMRequest | MemoryRequest | FunctionProbeRequest
                | AppRequest) -> Message:
        self.channel.send(message)
        while True:
            reply = self.channel.recv()
            if isinstance(reply, Violation):
                raise ProtocolError(f"hub sent an invalid frame: {reply.detail}")
            if getattr(reply, "id", None) != message.id:
                continue  # a late answer to something already abandoned
            if isinstance(reply, ErrorMessage) or reply.type in _ANSWERS[message.type]:
                return reply
            raise ProtocolError(f"hub answered {message.type} with {reply.type}")

    def http(self, method: str, url: str, *, headers: dict[str, str] | None = None,
             body: bytes | str | None = None) -> HttpResponse | ErrorMessage:
        """An HTTP request, performed by the hub if the URL is in this app's allowed domains."""
        return self.request(http_request(self.next_id(), method, url, headers, body))
