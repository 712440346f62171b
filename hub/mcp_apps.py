"""Runs in: hub.

Install, check and remove MCP servers as SecGPT apps.

    python -m hub.mcp_apps add time --python mcp_server_time.server:create_server --arg UTC
    python -m hub.mcp_apps add fetch --python mcp_server_fetch.server:create_server --allow example.com
    python -m hub.mcp_apps add notes --command /usr/local/bin/notes-mcp --stdio-arg --db=notes.db
    python -m hub.mcp_apps add docs --url https://mcp.example.com/mcp
    python -m hub.mcp_apps check time      # is the live server still the installed one?
    python -m hub.mcp_apps remove time

Installing lists the server's tools inside a confined spoke of the new app (the server's
code runs there, never in the hub; a remote server is reached through the hub's egress,
on its own host only), then writes the app into the data directory: its manifest
(installed/manifests/NAME.json, with the server's link and the pin of its tool list), one
specification per tool (installed/specifications/TOOL.json: the tool's input schema as
the request, its output schema, or text, as the response) and the app enabled as a toolkit
in functionalities.json. What the tools say is vendor text, shown to the user here: from
now on every LLM sees these installed texts, never the live server's, and a server whose
live list differs is refused until it is installed again (``--update``).

Every tool is recorded with side effects (the hub then treats a call as one that acts):
the server's own hints (readOnlyHint) are the vendor's word, and a malicious server would
call its send "read only". Edit a specification's ``side_effects`` to say otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError

from helpers.configs import paths
from helpers.isc.messages import NAME_PATTERN, McpListResponse, McpTool
from helpers.sandbox.launcher import SpokeLauncher
from helpers.tools.app_names import reserved
from helpers.tools.mcp.link import (
    McpServer,
    changes,
    functionality_name,
    pinned_tools,
    response_schema,
    tools_digest,
)
from helpers.tools.tool_importer import (
    AppManifest,
    FunctionalitiesFile,
    InstalledApp,
    ToolImporter,
    default_functionalities_path,
    installed_dir,
)
from helpers.utilities.errors import ConfigError, SecGPTError
from hub.audit import AuditLog
from hub.broker import SpokeBroker, describe


@dataclass(frozen=True)
class Installed:
    name: str
    manifest: Path
    tools: list[McpTool]
    server: str  # the name the server gives itself


def install(name: str, server: McpServer, *, description: str | None = None, allowed_domains: Iterable[str] = (),
            update: bool = False, launcher: SpokeLauncher | None = None) -> Installed:
    """List ``server``'s tools in a confined spoke and install it as the app ``name``."""
    _check_name(name)
    manifests, specs = installed_dir() / "manifests", installed_dir() / "specifications"
    manifest_path = manifests / f"{name}.json"
    if manifest_path.exists() and not update:
        raise ConfigError(f"{name} is installed already; to take the server's current tools, run "
                          f"python -m hub.mcp_apps add {name} ... --update")
    allowed = sorted({*allowed_domains, *_own_host(server)})
    listing = list_tools(name, server.model_copy(update={"tools_sha256": ""}), allowed, launcher)
    tools = listing.tools
    if not tools:
        raise ConfigError(f"the MCP server of {name} lists no tools; nothing to install")
    try:
        pinned = server.pinned(tools)
    except ValueError as exc:
        raise ConfigError(f"{name}: {exc}") from exc
    text = description or f"{listing.server or name} (an MCP server): {', '.join(t.name for t in tools)}"
    names = {functionality_name(t.name): t for t in tools}
    manifest = AppManifest(name=name, description=text, functionalities={f: t.description for f, t in names.items()},
                           allowed_domains=allowed, mcp=pinned)
    previous = _snapshot([manifest_path, *(specs / f"{f}.json" for f in names), default_functionalities_path(),
                          paths.data_dir() / "functionalities.json"])
    old = _installed_manifest(manifest_path)
    try:
        specs.mkdir(parents=True, exist_ok=True)
        if old is not None:
            for f in old.functionalities:
                (specs / f"{f}.json").unlink(missing_ok=True)
        for f, tool in names.items():
            _write(specs / f"{f}.json", specification(f, tool))
        _write(manifest_path, manifest.model_dump(mode="json", exclude_defaults=True) | {"name": name})
        _enable(name, list(names))
        ToolImporter()  # the whole catalogue must still load: names clash, confusable names, schemas
    except (ConfigError, OSError, ValueError) as exc:
        _restore(previous)
        raise ConfigError(f"{name} not installed: {exc}") from exc
    return Installed(name, manifest_path, tools, listing.server)


def check(name: str, launcher: SpokeLauncher | None = None) -> list[str]:
    """What changed in the live server since ``name`` was installed ([] when nothing)."""
    app = _app(name)
    link = app.manifest.mcp
    if link is None:
        raise ConfigError(f"{name} is not an MCP app")
    live = list_tools(name, link, list(app.manifest.allowed_domains), launcher).tools
    if tools_digest(live) == link.tools_sha256:
        return []
    return changes(pinned_tools(link, app.functionalities.values()), live) or [
        "the tool list differs from the one installed"]


def remove(name: str) -> None:
    manifest_path = installed_dir() / "manifests" / f"{name}.json"
    old = _installed_manifest(manifest_path)
    if old is None:
        raise ConfigError(f"no MCP app {name} is installed in {installed_dir()}")
    _disable(name)
    for f in old.functionalities:
        (installed_dir() / "specifications" / f"{f}.json").unlink(missing_ok=True)
    manifest_path.unlink()


def list_tools(name: str, link: McpServer, allowed: list[str], launcher: SpokeLauncher | None = None,
               timeout: float = 60.0) -> McpListResponse:
    """The live tool list of ``link``, from a confined spoke of the app ``name``."""
    manifest = AppManifest(name=name, description="(being installed)", functionalities={},
                           allowed_domains=allowed, mcp=link)
    spec = InstalledApp(manifest, {}).spec([])
    own = launcher is None
    runner = SpokeLauncher().start() if launcher is None else launcher
    try:
        broker = SpokeBroker(runner, AuditLog.in_dir(paths.audit_dir()))
        try:
            reply = broker.list_mcp_tools(broker.start(spec), timeout=timeout)
        finally:
            broker.close()
    finally:
        if own:
            runner.close()
    if not isinstance(reply, McpListResponse):
        raise ConfigError(f"could not list the tools of {name}'s MCP server ({link.describe()}): {describe(reply)}")
    return reply


def specification(functionality: str, tool: McpTool) -> dict[str, Any]:
    return {"side_effects": True, "$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
            "properties": {functionality: {"type": "object", "properties": {
                "request": tool.input_schema, "response": response_schema(tool)},
                "required": ["request", "response"]}},
            "required": [functionality]}


# --- files ----------------------------------------------------------------------------------------
def _check_name(name: str) -> None:
    import re
    if not re.fullmatch(NAME_PATTERN, name):
        raise ConfigError(f"{name!r} is not a valid app name: a letter, then letters, digits or _ (at most 64)")
    if (why := reserved(name)) is not None:
        raise ConfigError(why)


def _own_host(server: McpServer) -> list[str]:
    """A remote server's own host (with its port, when it names one): the one place its app may reach."""
    if server.url is None:
        return []
    parts = urlsplit(server.url)
    host = parts.hostname or ""
    return [f"{host}:{parts.port}" if parts.port else host]


def _installed_manifest(path: Path) -> AppManifest | None:
    try:
        return AppManifest.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        return None
    except ValueError as exc:
        raise ConfigError(f"{path} is not a valid manifest ({exc}); remove it by hand") from exc


def _app(name: str) -> InstalledApp:
    app = ToolImporter().apps.get(name)
    if app is None:
        raise ConfigError(f"no app {name} is installed; install it with python -m hub.mcp_apps add {name} ...")
    return app


def _functionalities() -> tuple[Path, FunctionalitiesFile]:
    """The data directory's functionalities.json (started from the repository's when it has none)."""
    source, target = default_functionalities_path(), paths.data_dir() / "functionalities.json"
    try:
        config = FunctionalitiesFile.model_validate_json(source.read_bytes())
    except FileNotFoundError:
        config = FunctionalitiesFile()
    except ValueError as exc:
        raise ConfigError(f"{source} is not valid ({exc}); fix it first") from exc
    return target, config


def _enable(name: str, functionalities: list[str]) -> None:
    target, config = _functionalities()
    config.available_toolkits[name] = functionalities
    config.installed_toolkits[name] = functionalities
    _write(target, config.model_dump(mode="json"))


def _disable(name: str) -> None:
    target, config = _functionalities()
    config.available_toolkits.pop(name, None)
    config.installed_toolkits.pop(name, None)
    _write(target, config.model_dump(mode="json"))


def _write(path: Path, data: Any) -> None:
    """Whole or not at all: a crash leaves the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    os.replace(tmp, path)


def _snapshot(files: list[Path]) -> dict[Path, bytes | None]:
    return {f: (f.read_bytes() if f.exists() else None) for f in dict.fromkeys(files)}


def _restore(snapshot: dict[Path, bytes | None]) -> None:
    for path, data in snapshot.items():
        if data is None:
            path.unlink(missing_ok=True)
        else:
            path.write_bytes(data)


# --- command line ---------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hub.mcp_apps", description=__doc__.split("\n\n")[1])
    sub = parser.add_subparsers(dest="action", required=True)
    add = sub.add_parser("add", help="install an MCP server as an app (lists its tools in a confined spoke)")
    add.add_argument("name", help="the app's name (letters, digits, _)")
    kind = add.add_mutually_exclusive_group(required=True)
    kind.add_argument("--python", metavar="MODULE:FACTORY",
                      help="a Python server: a function returning the SDK server object, run inside the spoke")
    kind.add_argument("--command", metavar="PATH", help="a stdio server: its executable, an absolute path")
    kind.add_argument("--url", help="a remote server (streamable HTTP), reached through the hub's egress")
    add.add_argument("--arg", action="append", default=[], help="an argument of the Python factory (repeatable)")
    add.add_argument("--stdio-arg", action="append", default=[], help="an argument of the command (repeatable)")
    add.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                     help="the command's environment (repeatable; nothing else of yours is passed)")
    add.add_argument("--allow", action="append", default=[], metavar="DOMAIN",
                     help="a domain the server may reach through the hub (repeatable)")
    add.add_argument("--description", help="what the planner and you read about the app (default: its tools)")
    add.add_argument("--update", action="store_true", help="re-install: take the server's current tools")
    for action in ("check", "remove"):
        sub.add_parser(action).add_argument("name")
    args = parser.parse_args(argv)
    try:
        if args.action == "add":
            return _add(args)
        if args.action == "check":
            found = check(args.name)
            print(f"{args.name}: unchanged since installation" if not found
                  else f"{args.name}: CHANGED since installation: " + "; ".join(found))
            return 1 if found else 0
        remove(args.name)
        print(f"{args.name} removed")
        return 0
    except SecGPTError as exc:
        print(f"mcp_apps: {exc}", file=sys.stderr)
        return 2


def _add(args: argparse.Namespace) -> int:
    env = dict(item.split("=", 1) for item in args.env if "=" in item)
    if len(env) != len(args.env):
        raise ConfigError("--env takes KEY=VALUE")
    try:
        server = McpServer(python=args.python, args=args.arg,
                           command=[args.command, *args.stdio_arg] if args.command else None,
                           env=env, url=args.url)
    except ValidationError as exc:
        raise ConfigError(f"the server: {exc.errors(include_url=False)[0]['msg']}") from exc
    done = install(args.name, server, description=args.description, allowed_domains=args.allow, update=args.update)
    print(f"installed {done.name} ({done.server or server.describe()}), {len(done.tools)} tools, pinned:")
    for tool in done.tools:
        print(f"  {tool.name}: {tool.description[:200]}")
    print(f"manifest: {done.manifest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
