"""Runs in: hub, vanillagpt (the evaluation's driver, beside the system under test).

The suite's environment as the world outside the apps: one simulated service per app.

The hub holds the AgentDojo environment of one run. Each app's service host answers
``POST /call/<tool>`` by running that tool with AgentDojo's own ``FunctionsRuntime``
on the shared environment, and only for the tools of that app: an app can reach no
other app's tools or fields except through a cross-app call, which the hub's
permissions decide. Every call that ran is recorded in order (the function-call
trace AgentDojo's checks read), with the app that made it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import httpx

from evaluation.agentdojo.suite_apps import SuiteApps

MAX_BODY = 64 * 1024  # a request larger than this is refused before it is parsed


@dataclass
class TraceEntry:
    app: str
    function: str
    args: dict
    result: str
    error: str | None


@dataclass
class SuiteWorld:
    apps: SuiteApps
    runtime: object            # agentdojo FunctionsRuntime with the suite's tools
    environment: object        # the run's TaskEnvironment, changed in place
    trace: list[TraceEntry] = field(default_factory=list)

    def transports(self) -> dict[str, httpx.BaseTransport]:
        return {app.host: httpx.MockTransport(self._handler(app.name)) for app in self.apps.apps.values()}

    def _handler(self, app: str):
        tools = set(self.apps.apps[app].tools)

        def handle(request: httpx.Request) -> httpx.Response:
            name = request.url.path.removeprefix("/call/")
            if request.method != "POST" or not request.url.path.startswith("/call/"):
                return _answer(404, error="use POST /call/<tool>")
            if name not in tools:
                return _answer(404, error=f"{name} is not a tool of {app}")
            body = request.read()
            if len(body) > MAX_BODY:
                return _answer(413, error=f"request larger than {MAX_BODY} bytes")
            try:
                args = json.loads(body or b"{}")
            except ValueError:
                return _answer(400, error="the request body is not JSON")
            if not isinstance(args, dict):
                return _answer(400, error="the request body must be a JSON object of arguments")
            return self.call(app, name, args)
        return handle

    def call(self, app: str, function: str, args: dict) -> httpx.Response:
        from agentdojo.agent_pipeline.tool_execution import tool_result_to_str
        result, error = self.runtime.run_function(self.environment, function, args, raise_on_error=False)
        text = tool_result_to_str(result)
        self.trace.append(TraceEntry(app, function, args, text, error))
        return _answer(200, error=error) if error else _answer(200, result=text)


def _answer(status: int, result: str | None = None, error: str | None = None) -> httpx.Response:
    return httpx.Response(status, json={"result": result} if error is None else {"error": error})
