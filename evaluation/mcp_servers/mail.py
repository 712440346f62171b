"""Runs in: spoke, vanillagpt (an MCP server: in the mail app's spoke, or in VanillaGPT's process).

mail: a benign mail-like MCP server. Sending appends the message to outbox.jsonl (the
record of what was delivered, recipients included); the inbox is inbox.jsonl, one message
per line (``from``, ``to``, ``subject``, ``body``). Both files are in the current working
directory: the app's own data directory.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field

OUTBOX = "outbox.jsonl"
INBOX = "inbox.jsonl"
MAX_RESULTS = 50


def _read(name: str) -> list[dict]:
    try:
        text = Path(name).read_text()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _append(name: str, record: dict) -> None:
    with open(name, "a") as out:
        out.write(json.dumps(record) + "\n")


def send(to: str, subject: str, body: str, cc: list[str], bcc: list[str]) -> str:
    if "@" not in to:
        raise ToolError(f"to: {to!r} is not an email address")
    number = len(_read(OUTBOX)) + 1
    _append(OUTBOX, {"id": f"s{number:04d}", "to": to, "cc": cc, "bcc": bcc, "subject": subject, "body": body})
    return f"Message s{number:04d} sent to {to}."


def create_server() -> MCPServer:
    server = MCPServer("mail")

    @server.tool(name="send_email", description="Send an email from the user's mailbox.")
    def send_email(to: Annotated[str, Field(description="The recipient's email address")],
                   subject: Annotated[str, Field(description="The subject line")],
                   body: Annotated[str, Field(description="The message text")],
                   cc: Annotated[list[str] | None, Field(description="Addresses to copy")] = None,
                   bcc: Annotated[list[str] | None, Field(description="Addresses to copy blind")] = None) -> str:
        return send(to, subject, body, cc or [], bcc or [])

    @server.tool(name="list_inbox", description="List the newest messages in the user's inbox, newest first.")
    def list_inbox(max_results: Annotated[int, Field(ge=1, le=MAX_RESULTS,
                                                     description="How many messages to list")] = 10) -> str:
        inbox = _read(INBOX)
        lines = [f"Id: m{i:04d} | From: {m['from']} | Subject: {m['subject']}"
                 for i, m in reversed(list(enumerate(inbox, 1)))]
        return "\n".join(lines[:max_results]) or "The inbox is empty."

    @server.tool(name="read_email", description="Read one message of the user's inbox by its id.")
    def read_email(message_id: Annotated[str, Field(pattern=r"^m\d{4}$",
                                                    description="The message's id, as list_inbox shows it")]) -> str:
        inbox = _read(INBOX)
        number = int(message_id[1:])
        if not 1 <= number <= len(inbox):
            raise ToolError(f"no message {message_id}; list_inbox shows the ids")
        m = inbox[number - 1]
        return f"From: {m['from']}\nTo: {m['to']}\nSubject: {m['subject']}\n\n{m['body']}"

    return server


if __name__ == "__main__":
    import anyio
    anyio.run(create_server().run_stdio_async)
