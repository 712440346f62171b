"""Runs in: spoke, vanillagpt (app code: in its own spoke, or in VanillaGPT's one process).

A generic client app for a service with one endpoint per functionality.

Each functionality ``NAME`` is ``POST http://<service_host>/call/NAME`` with the request
as its JSON body; the service answers ``{"result": TEXT}`` or ``{"error": TEXT}``. The
manifest names the functionalities and lists ``service_host`` among its allowed
domains, so the hub's egress check is what keeps the app on its own service. The
AgentDojo evaluation runs its suites' tools this way: the suite's environment is the
service, held by the hub; the app's code and LLM context stay in its spoke.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from helpers.isc.messages import ErrorMessage


def make_functionalities(names: list[str], settings: dict[str, str]) -> dict[str, Callable]:
    host = settings.get("service_host", "")
    if not host:
        raise ValueError("service_client needs the setting service_host (the manifest's settings)")
    return {name: _endpoint(host, name) for name in names}


def _endpoint(host: str, name: str) -> Callable:
    def call(request: dict, hub) -> str:
        reply = hub.http("POST", f"http://{host}/call/{name}", headers={"content-type": "application/json"},
                         body=json.dumps(request))
        if isinstance(reply, ErrorMessage):
            return f"Error: {reply.message}"
        try:
            answer = json.loads(reply.body)
        except ValueError:
            return f"Error: the service answered {reply.status} with a body that is not JSON"
        if not isinstance(answer, dict) or not isinstance(answer.get("result", answer.get("error")), str):
            return f"Error: the service answered {reply.status} with an unexpected body"
        return answer["result"] if "result" in answer else f"Error: {answer['error']}"
    return call
