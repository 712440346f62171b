"""Official MCP servers from PyPI (requirements-mcp.txt), installed with the README's commands
and run end to end in their own spokes: mcp-server-time through secgpt_main.py and
vanillagpt_main.py, mcp-server-fetch against a local page its manifest allows (and, the
control, refused by the hub when the manifest does not).

CI installs requirements-mcp.txt and sets SECGPT_TESTS_NEED_MCP_SERVERS=1, so there these
tests cannot be skipped; an install without it skips them with the fix."""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading

import pytest

from helpers.configs import paths
from helpers.isc.messages import AppResponse, ErrorMessage
from hub.audit import AuditLog
from hub.broker import SpokeBroker
from tests.http_helpers import QuietHandler

if os.environ.get("SECGPT_TESTS_NEED_MCP_SERVERS"):
    import mcp_server_fetch  # noqa: F401 - fails collection loudly where the servers must be present
    import mcp_server_time  # noqa: F401
else:
    pytest.importorskip("mcp_server_time", reason="pip install -r requirements-mcp.txt")
    pytest.importorskip("mcp_server_fetch", reason="pip install -r requirements-mcp.txt")

TIME_SCRIPT = {"rules": [
    {"name": "memory", "when": {"query_contains": "Extract the facts about the user"}, "then": {"content": "{}"}},
    {"name": "summary", "when": {"query_contains": "Summarise this conversation"}, "then": {"content": "-"}},
    {"name": "plan", "when": {"system_contains": "You are the planner of SecGPT", "query_contains": "Tokyo"},
     "then": {"content": json.dumps({"steps": [{"name": "get_current_time", "input": {"timezone": "Asia/Tokyo"},
                                                "output": "the time"}]})}},
    {"name": "answer", "when": {"called": ["get_current_time"]}, "then": {"content": "Tokyo: {tools}"}},
    {"name": "call", "when": {"tools_include": ["get_current_time"], "query_contains": "Tokyo",
                              "not_called": ["get_current_time"]},
     "then": {"tool_calls": [{"name": "get_current_time", "args": {"timezone": "Asia/Tokyo"}}]}},
]}


def _run(args: list[str], data_dir, stdin: str = "", extra: dict | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "SECGPT_"))}
    env.update(SECGPT_DATA_DIR=str(data_dir), **(extra or {}))
    return subprocess.run([sys.executable, *args], input=stdin, capture_output=True, text=True, timeout=180,
                          cwd=paths.REPO_ROOT, env=env)


def test_mcp_server_time_installs_and_answers_through_both_chat_programs(data_dir, tmp_path):
    installed = _run(["-m", "hub.mcp_apps", "add", "time", "--python", "mcp_server_time.server:create_server",
                      "--arg", "UTC"], data_dir)
    assert installed.returncode == 0, installed.stderr
    assert "installed time (mcp-time), 2 tools" in installed.stdout and "get_current_time" in installed.stdout
    script = tmp_path / "script.json"
    script.write_text(json.dumps(TIME_SCRIPT))
    for program, name in (("secgpt_main.py", "SecGPT"), ("vanillagpt_main.py", "VanillaGPT")):
        chat = _run([program, "--llm", "scripted", "--consent", "expected"], data_dir,
                    stdin="What time is it in Tokyo?\n", extra={"SECGPT_SCRIPT": str(script)})
        assert chat.returncode == 0, chat.stderr
        assert f"{name}: Tokyo:" in chat.stdout and '"timezone": "Asia/Tokyo"' in chat.stdout, chat.stdout
    # SecGPT ran it in the app's own spoke: the audit log has that spoke and the tool's answer.
    audit = "".join(p.read_text() for p in (data_dir / "audit").glob("*.jsonl"))
    assert '"event": "spoke_started", "app": "time"' in audit and "Asia/Tokyo" in audit


def test_mcp_server_fetch_reaches_only_what_its_manifest_allows(launcher, data_dir, monkeypatch):
    from helpers.tools.mcp.link import McpServer
    from helpers.tools.tool_importer import ToolImporter
    from hub.mcp_apps import install

    class Page(QuietHandler):
        def do_GET(self):
            self.send_body(200, b"<html><body><h1>Local news</h1><p>All quiet.</p></body></html>", "text/html")
    web = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    port = web.server_address[1]
    # The server's own private-address guard is switched off (its 4th argument), so that what
    # keeps it to the allowed page is the hub's egress rule alone, which the control then shows.
    link = McpServer(python="mcp_server_fetch.server:create_server", args=[None, True, None, True])
    broker = SpokeBroker(launcher, AuditLog(data_dir / "audit.jsonl"))
    try:
        install("fetch", link, allowed_domains=[f"127.0.0.1:{port}"], launcher=launcher)
        spoke = broker.start(ToolImporter().app_spec("fetch"))
        # raw: the page as served. Simplifying HTML makes the server's readabilipy start Node.js,
        # and a spoke may start no process: that call fails (measured here, stated in the README).
        reply = broker.call(spoke, "fetch", {"url": f"http://127.0.0.1:{port}/news", "raw": True})
        assert isinstance(reply, AppResponse) and "<h1>Local news</h1>" in reply.response
        simplified = broker.call(spoke, "fetch", {"url": f"http://127.0.0.1:{port}/news"})
        assert isinstance(simplified, AppResponse) and simplified.response.startswith("Error from fetch")
        # Control: the manifest no longer allows the page; the same server is refused by the hub.
        manifest = data_dir / "installed" / "manifests" / "fetch.json"
        manifest.write_text(json.dumps(json.loads(manifest.read_text()) | {"allowed_domains": ["127.0.0.1:1"]}))
        refused = broker.call(broker.start(ToolImporter().app_spec("fetch")), "fetch",
                              {"url": f"http://127.0.0.1:{port}/news", "raw": True})
        assert isinstance(refused, (AppResponse, ErrorMessage)) and "Local news" not in str(refused)
    finally:
        broker.close()
        web.shutdown()
        web.server_close()
    events = [json.loads(line) for line in (data_dir / "audit.jsonl").read_text().splitlines()]
    assert [e["allowed"] for e in events if e.get("event") == "egress"] == [True, True, False]
