"""Runs in: hub, vanillagpt (the evaluation's driver, beside the system under test).

Which SecGPT apps a suite's tools form, and the app catalogue built from them.

A data file per suite (evaluation/agentdojo/apps/<suite>.json) groups the tools into
apps as a user would install them, and says which fields of the suite's environment
each app owns. A tool may only depend on fields its app owns, or on another app's
field declared as a ``side_effect`` (with the reason, e.g. a calendar service mailing
invitations): anything else is a ConfigError naming the fix. A suite without a data
file gets one app per tool; fields several such apps use are shared, and reported.

The catalogue is written in the project's usual form (functionalities.json, one
manifest per app, one specification per functionality) into a run's data directory;
every app is the generic ``service_client`` reaching only its own service host.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from helpers.configs import paths
from helpers.isc.messages import NAME_PATTERN
from helpers.utilities.errors import ConfigError

APPS_DIR = Path(__file__).resolve().parent / "apps"
CLIENT_MODULE = "helpers.tools.apps.service_client"
RESPONSE_MAX = 200_000  # characters of one tool result (a whole drive listing fits)


class AppEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    description: str = Field(min_length=1)
    tools: list[str] = Field(min_length=1)
    fields: list[str] = Field(default_factory=list)
    side_effects: dict[str, str] = Field(default_factory=dict)


class AppsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    about: str = ""
    apps: dict[str, AppEntry]


@dataclass(frozen=True)
class SuiteApp:
    name: str
    description: str
    tools: tuple[str, ...]
    fields: frozenset[str]

    @property
    def host(self) -> str:
        """The app's service host: one label, so only this app, listing it exactly, reaches it."""
        return "agentdojo-" + self.name.lower().replace("_", "-")


@dataclass
class SuiteApps:
    suite: str
    apps: dict[str, SuiteApp]
    source: str                                              # the data file, or "one app per tool"
    shared_fields: dict[str, list[str]] = field(default_factory=dict)   # field -> apps using it
    side_effects: dict[str, dict[str, str]] = field(default_factory=dict)  # app -> field -> reason

    def app_of(self, tool: str) -> str:
        for app in self.apps.values():
            if tool in app.tools:
                return app.name
        raise KeyError(tool)

    def write_catalogue(self, tools: dict, target: Path) -> Path:
        """Write functionalities.json, manifests/ and specifications/ under ``target``;
        returns the functionalities.json path."""
        (target / "manifests").mkdir(parents=True, exist_ok=True)
        (target / "specifications").mkdir(parents=True, exist_ok=True)
        toolkits = {a.name: list(a.tools) for a in self.apps.values()}
        listing = {"available_functionalities": sorted(tools), "installed_functionalities": sorted(tools),
                   "available_toolkits": toolkits, "installed_toolkits": toolkits,
                   "available_annotations": [], "enabled_annotations": []}
        for app in self.apps.values():
            manifest = {"name": app.name, "module": CLIENT_MODULE, "description": app.description,
                        "functionalities": {t: tools[t].description for t in app.tools},
                        "allowed_domains": [app.host], "settings": {"service_host": app.host}}
            (target / "manifests" / f"{app.name}.json").write_text(json.dumps(manifest, indent=1))
            for t in app.tools:
                spec = {"type": "object", "properties": {t: {"type": "object", "properties": {
                    "request": request_schema(tools[t]),
                    "response": {"type": "string", "maxLength": RESPONSE_MAX}}}}}
                (target / "specifications" / f"{t}.json").write_text(json.dumps(spec, indent=1))
        path = target / "functionalities.json"
        path.write_text(json.dumps(listing, indent=1))
        return path


def request_schema(tool) -> dict:
    """The tool's own argument schema (AgentDojo builds it with pydantic from the signature)."""
    schema = tool.parameters.model_json_schema()
    schema.pop("title", None)
    schema.setdefault("properties", {})
    return schema


def dependencies(tool) -> set[str]:
    """The environment fields a tool is given (a computed dependency is named after its function)."""
    return {d.env_dependency if isinstance(d.env_dependency, str)
            else f"computed:{getattr(d.env_dependency, '__name__', 'dependency')}"
            for d in tool.dependencies.values()}


def load_suite_apps(suite_name: str, tools: list, path: Path | None = None) -> SuiteApps:
    by_name = {t.name: t for t in tools}
    path = path or APPS_DIR / f"{suite_name}.json"
    if not path.exists():
        return _one_app_per_tool(suite_name, by_name)
    try:
        data = AppsFile.model_validate_json(path.read_bytes())
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        raise ConfigError(f"{path}: {'.'.join(map(str, first['loc'])) or 'top level'}: {first['msg']}") from exc
    except ValueError as exc:
        raise ConfigError(f"{path} is not valid JSON ({exc})") from exc
    apps: dict[str, SuiteApp] = {}
    owner: dict[str, str] = {}
    placed: dict[str, str] = {}
    for name, entry in data.apps.items():
        if not re.match(NAME_PATTERN, name):
            raise ConfigError(f"{path}: app name {name!r} must match {NAME_PATTERN}")
        for t in entry.tools:
            if t not in by_name:
                raise ConfigError(f"{path}: apps.{name}: {t!r} is not a tool of the {suite_name} suite "
                                  f"(its tools: {', '.join(sorted(by_name))})")
            if t in placed:
                raise ConfigError(f"{path}: tool {t!r} is in two apps ({placed[t]}, {name}); keep it in one")
            placed[t] = name
        for f in entry.fields:
            if f in owner:
                raise ConfigError(f"{path}: environment field {f!r} is owned by {owner[f]} and {name}; "
                                  "give it to one app (the other may declare a side_effect on it)")
            owner[f] = name
        apps[name] = SuiteApp(name, entry.description, tuple(entry.tools), frozenset(entry.fields))
    _distinct_hosts(apps, path)
    missing = sorted(set(by_name) - set(placed))
    if missing:
        raise ConfigError(f"{path}: tools {', '.join(missing)} are in no app; add them to one")
    for name, entry in data.apps.items():
        for t in entry.tools:
            for f in sorted(dependencies(by_name[t]) - set(entry.fields) - set(entry.side_effects)):
                raise ConfigError(f"{path}: {t} (app {name}) uses the environment field {f!r}, which {name} "
                                  f"does not own: move {t} to {owner.get(f, 'the app owning it')}, or declare "
                                  f"apps.{name}.side_effects.{f} with the reason")
    shown = path.resolve().relative_to(paths.REPO_ROOT) if path.resolve().is_relative_to(paths.REPO_ROOT) else path
    return SuiteApps(suite_name, apps, str(shown),
                     side_effects={n: dict(e.side_effects) for n, e in data.apps.items() if e.side_effects})


def _distinct_hosts(apps: dict[str, SuiteApp], where: Path) -> None:
    """Two apps on one service host would reach each other's tools."""
    seen: dict[str, str] = {}
    for app in apps.values():
        if app.host in seen:
            raise ConfigError(f"{where}: apps {seen[app.host]!r} and {app.name!r} differ only in case or "
                              "'_' vs '-', and would share a service host; rename one")
        seen[app.host] = app.name


def _one_app_per_tool(suite_name: str, by_name: dict) -> SuiteApps:
    apps = {}
    users: dict[str, list[str]] = {}
    for t in by_name.values():
        name = t.name if re.match(NAME_PATTERN, t.name) else re.sub(r"\W", "_", t.name)[:64]
        if name in apps:
            raise ConfigError(f"suite {suite_name}: tools {apps[name].tools[0]!r} and {t.name!r} would both be "
                              f"app {name!r}; give the suite an apps file")
        fields = frozenset(dependencies(t))
        apps[name] = SuiteApp(name, (t.description.splitlines() or [t.name])[0], (t.name,), fields)
        for f in fields:
            users.setdefault(f, []).append(name)
    _distinct_hosts(apps, Path(f"{suite_name} (one app per tool)"))
    shared = {f: sorted(a) for f, a in users.items() if len(a) > 1}
    return SuiteApps(suite_name, apps, "one app per tool", shared_fields=shared)
