"""Helpers for the tests that run an MCP server as a command next to a spoke: the fixture server,
and the client code a spoke runs to talk to it through the pipes ``server_process.take`` gives."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from helpers.sandbox.app_spec import AppSpec
from helpers.sandbox.sandbox import SANDBOX_APP
from hub.broker import SpokeBroker

FIXTURE_SERVER = Path(__file__).parent / "fixtures" / "mcp_command_server.py"
SERVER_COMMAND = (sys.executable, str(FIXTURE_SERVER))

# Run in the spoke (the sandbox app's run_code): an MCP client over the server's pipes, which
# lists the tools and makes the calls in CALLS ([name, arguments] pairs); prints one JSON line.
CLIENT_CODE = '''
import json, os
from contextlib import asynccontextmanager

import anyio
from mcp import Client, types
from mcp.shared.message import SessionMessage

from helpers.sandbox import server_process

pipes = server_process.take()


@asynccontextmanager
async def over_pipes():
    incoming_in, incoming = anyio.create_memory_object_stream(16)
    outgoing, outgoing_out = anyio.create_memory_object_stream(16)
    stdout = open(pipes.stdout_fd, "rb", closefd=False)

    async def read():
        async with incoming_in:
            while line := await anyio.to_thread.run_sync(stdout.readline, abandon_on_cancel=True):
                message = types.jsonrpc_message_adapter.validate_json(line, by_name=False)
                await incoming_in.send(SessionMessage(message))

    async def write():
        async with outgoing_out:
            async for message in outgoing_out:
                line = message.message.model_dump_json(by_alias=True, exclude_unset=True) + "\\n"
                await anyio.to_thread.run_sync(os.write, pipes.stdin_fd, line.encode())

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(read)
        tasks.start_soon(write)
        yield incoming, outgoing
        tasks.cancel_scope.cancel()


async def main():
    async with Client(over_pipes(), read_timeout_seconds=READ_TIMEOUT) as client:
        listed = await client.list_tools()
        answers = []
        for name, arguments in CALLS:
            try:
                result = await client.call_tool(name, arguments)
            except Exception as exc:  # the server gone (an exec that worked replaced it)
                answers.append(f"call failed: {type(exc).__name__}: {exc}")
                break
            answers.append(" ".join(getattr(part, "text", "") for part in result.content))
        return {"pid": pipes.pid, "tools": sorted(tool.name for tool in listed.tools), "answers": answers}

findings = anyio.run(main)
print(json.dumps(findings))
'''


def client_code(calls: list[tuple[str, dict]], read_timeout: float = 30.0) -> str:
    """``CLIENT_CODE`` making ``calls``; it leaves its findings in ``findings`` and prints them."""
    return f"CALLS = {json.dumps([list(call) for call in calls])}\nREAD_TIMEOUT = {read_timeout}\n" + CLIENT_CODE


def command_app(name: str = "mcpcmd", **kwargs: object) -> AppSpec:
    """An app whose spoke runs the fixture server as a command (and the sandbox app's run_code)."""
    return AppSpec(name=name, module=SANDBOX_APP.module, server_command=SERVER_COMMAND,
                   extra_read_only=(FIXTURE_SERVER,), **kwargs)  # type: ignore[arg-type]


def call_server(hub: SpokeBroker, spoke: object, calls: list[tuple[str, dict]], timeout: float = 60.0) -> dict:
    """From inside ``spoke``: list the server's tools and make ``calls``; the client's findings."""
    code = client_code(calls)
    outcome = hub.call(spoke, "run_code", {"code": code}, timeout=timeout)
    response = outcome.response
    if response["error_type"] is not None:
        raise AssertionError(f"the spoke's client failed: {response['error_type']}: {response['error']}")
    return json.loads(response["stdout"].strip().splitlines()[-1])
