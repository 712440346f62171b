"""Runs in: hub, vanillagpt.

The app catalogue: which apps are installed and what each is. ``ToolImporter`` (the
original's name) reads data/functionalities.json (the original's format), each app's
manifest (helpers/tools/manifests/<app>.json) and each functionality's specification
(helpers/tools/specifications/<functionality>.json: JSON Schemas of its request and
response). An annotation app (a manifest with no module: no code, its own LLM answers,
steered by its annotation) has one specification for the app instead, as in the
original: specifications/<app>.json with its ``description`` and ``annotation_text``,
the only place those texts live. A bad file is a ConfigError naming the file and key.

An app is a toolkit (several functionalities in one spoke, e.g. gmail) or a
single functionality that is its own app.

The catalogue only reads files: it must never import or run an app's code (the spoke
does, confined; VanillaGPT does, in its one process).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import jsonschema
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from helpers.configs import paths
from helpers.isc.control import FunctionalityProfile, SpokeProfile
from helpers.isc.messages import NAME_PATTERN
from helpers.sandbox.app_spec import AppSpec
from helpers.sandbox.budget import MAX_REQUEST_TIMEOUT_S, Budget
from helpers.sandbox.egress import normalize_allowed
from helpers.sandbox.policy import POLICY_EXCEPTIONS, ResourceLimits, interpreter_paths
from helpers.tools.app_names import reserved, skeleton
from helpers.tools.mcp.link import McpServer
from helpers.utilities.errors import ConfigError

TOOLS_DIR = paths.REPO_ROOT / "helpers" / "tools"


class FunctionalitiesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    available_functionalities: list[str] = Field(default_factory=list)
    installed_functionalities: list[str] = Field(default_factory=list)
    available_toolkits: dict[str, list[str]] = Field(default_factory=dict)
    installed_toolkits: dict[str, list[str]] = Field(default_factory=dict)
    available_annotations: list[str] = Field(default_factory=list)
    enabled_annotations: list[str] = Field(default_factory=list)


class AppManifest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=NAME_PATTERN)
    # What the planner and the user see. An annotation app's is in its specification (filled in on load).
    description: str = ""
    module: str = Field(default="", pattern=r"^([A-Za-z_][A-Za-z0-9_.]*)?$")  # "" for an annotation app
    functionalities: dict[str, str]
    allowed_domains: list[str] = Field(default_factory=list)
    limits: ResourceLimits = Field(default_factory=ResourceLimits)
    settings: dict[str, str] = Field(default_factory=dict)  # defaults; data/app_settings.json overrides
    # What this app needs beyond the common sandbox policy (names and reasons: POLICY_EXCEPTIONS).
    sandbox_exceptions: list[Literal[tuple(POLICY_EXCEPTIONS)]] = Field(default_factory=list)  # type: ignore[valid-type]
    # What it may cost the hub per query (LLM calls, prompt and audit KiB), within the hub's maxima.
    budget: Budget = Field(default_factory=Budget)
    mcp: McpServer | None = None  # an MCP server as the app's code (helpers/tools/mcp; no module)

    @property
    def is_annotation(self) -> bool:
        return not self.module and self.mcp is None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if (why := reserved(value)) is not None:
            raise ValueError(why)
        return value

    @field_validator("allowed_domains")
    @classmethod
    def _domains(cls, value: list[str]) -> list[str]:
        return [normalize_allowed(d) for d in value]

    @field_validator("limits")
    @classmethod
    def _limits(cls, value: ResourceLimits) -> ResourceLimits:
        if value.request_timeout_s > MAX_REQUEST_TIMEOUT_S:
            raise ValueError(f"request_timeout_s {value.request_timeout_s:g} is above the hub's maximum of "
                             f"{MAX_REQUEST_TIMEOUT_S:g} s; lower it")
        return value

    @model_validator(mode="before")
    @classmethod
    def _no_inline_annotation(cls, data: Any) -> Any:
        if isinstance(data, dict) and "annotation" in data:
            raise ValueError(f"annotation: an annotation app's text lives in specifications/{data.get('name')}.json "
                             "as \"annotation_text\", next to its \"description\"; move both there")
        return data

    @model_validator(mode="after")
    def _one_description(self) -> AppManifest:
        if self.mcp is not None and self.module:
            raise ValueError("an MCP app's code is its server (\"mcp\"); remove \"module\"")
        if self.mcp is not None and not self.description:
            raise ValueError("description is missing: say what the MCP server does (the planner and the user read it)")
        if self.mcp is not None:
            return self
        if self.module and not self.description:
            raise ValueError("description is missing: say what the app does (the planner and the user read it)")
        if not self.module and self.description:
            raise ValueError(f"an annotation app (no module) keeps its description in its specification, "
                             f"specifications/{self.name}.json; remove it here")
        return self


class AnnotationSpec(BaseModel):
    """specifications/<app>.json of an annotation app (the original's keys)."""
    model_config = ConfigDict(extra="forbid")
    description: str = Field(min_length=1)
    annotation_text: str = Field(min_length=1)  # steers the LLM in the app's own spoke only


@dataclass(frozen=True)
class Functionality:
    name: str
    app: str
    description: str
    request_schema: dict[str, Any]
    response_schema: dict[str, Any]
    side_effects: bool = True  # the specification's top-level "side_effects" (see hub/effects.py)


@dataclass(frozen=True)
class InstalledApp:
    manifest: AppManifest
    functionalities: dict[str, Functionality]
    annotation: str | None = None
    settings: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.manifest.name

    def spec(self, others: list[str]) -> AppSpec:
        profile = SpokeProfile(
            kind="app", app=self.name, description=self.manifest.description, annotation=self.annotation,
            mcp=self.manifest.mcp,
            functionalities=[FunctionalityProfile(name=f.name, description=f.description,
                                                  request_schema=f.request_schema,
                                                  response_schema=f.response_schema)
                             for f in self.functionalities.values()],
            others=[o for o in others if o not in self.functionalities], settings=self.settings)
        allowed, mcp = self.manifest.allowed_domains, self.manifest.mcp
        if "allowed_domains" in self.settings:  # the user's own list, from data/app_settings.json
            allowed = [normalize_allowed(d) for d in self.settings["allowed_domains"].split(",") if d.strip()]
        return AppSpec(name=self.name, module=self.manifest.module,
                       allowed_domains=frozenset(allowed),
                       limits=self.manifest.limits, profile=profile,
                       sandbox_exceptions=frozenset(self.manifest.sandbox_exceptions), budget=self.manifest.budget,
                       extra_read_only=code_read_paths(self.manifest),
                       server_command=tuple(mcp.command) if mcp is not None and mcp.command else (),
                       server_env=dict(mcp.env) if mcp is not None else {})


def code_read_paths(manifest: AppManifest) -> tuple[Path, ...]:
    """What a spoke must read, beyond what every spoke reads, to run the app's code."""
    if manifest.mcp is not None and manifest.mcp.python:
        return module_read_paths(manifest.mcp.python.partition(":")[0])
    if manifest.mcp is not None and manifest.mcp.command:
        return tuple(Path(p) for p in manifest.mcp.read)  # the binary itself: the sandbox grants it
    return module_read_paths(manifest.module) if manifest.module else ()


# Packages of the repository, beside its code directories, that hold app code and nothing the hub
# keeps from apps: the case studies' MCP servers. A spoke cannot list the repository's root, nor
# evaluation/ (importing them would): the zygote imports these packages (empty) before it forks
# (launcher.SPOKE_PROGRAM), and an app whose code is in one reads that package's directory only.
APP_PACKAGES_IN_REPO = ("evaluation.mcp_servers",)


def module_read_paths(module: str) -> tuple[Path, ...]:
    """The directory a spoke must read to import ``module``: nothing for a package every spoke
    reads already (helpers/ and spoke/, the interpreter's libraries), else the Python path's
    entry its top-level package lies in (importing lists it), or that package's own directory.

    Refused, because the grant would expose what the hub keeps from apps: a top-level name
    that is not a regular package (a namespace package has no __init__.py and takes its
    portions from every directory on the path: the repository's data/ in the hub, the app's
    own writable directory in a spoke); a package inside the repository other than its code
    directories (data/ holds the OAuth client, keys and tokens, wherever the data directory
    points); a package in or around the data directory."""
    for name in APP_PACKAGES_IN_REPO:
        directory = paths.REPO_ROOT.joinpath(*name.split("."))
        data = paths.data_dir()
        if module.startswith(name + ".") and not (directory.is_relative_to(data) or data.is_relative_to(directory)):
            return (directory,)
    top = module.split(".")[0]
    spec = importlib.util.find_spec(top)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"app module {module!r}: {top!r} must be an importable package (a directory with "
                          "__init__.py) on the Python path")
    if spec.origin in (None, "namespace") or Path(spec.origin).name != "__init__.py":
        raise ConfigError(f"app module {module!r}: {top!r} is a namespace package (no __init__.py), which any "
                          f"directory on the Python path can extend; give {top}/ an __init__.py or move the app "
                          "into helpers/tools/apps/")
    package = Path(spec.origin).resolve().parent
    if any(package.is_relative_to(p) for p in (*(paths.REPO_ROOT / d for d in paths.CODE_DIRS),
                                               *interpreter_paths())):
        return ()
    # Importing it lists the directory it was found in (the Python path's entry), so that entry is
    # granted, as site-packages is: a directory of installed code (pip install --target DIR).
    entries = {Path(p).resolve() for p in sys.path if p not in ("", ".")}
    if package.parent in entries:
        package = package.parent
    if package.is_relative_to(paths.REPO_ROOT) or paths.REPO_ROOT.is_relative_to(package):
        raise ConfigError(f"app module {module!r} lives in {package}, inside the repository but outside its code "
                          f"directories ({', '.join(paths.CODE_DIRS)}); move it into helpers/tools/apps/ or "
                          "install it as a package outside the repository")
    data = paths.data_dir()
    if package.is_relative_to(data) or data.is_relative_to(package):
        raise ConfigError(f"app module {module!r} lives in {package}, which holds or lies in the data directory "
                          f"{data}; install it as a package elsewhere")
    return (package,)


def installed_dir() -> Path:
    """Apps the user installed into the data directory (MCP servers: hub/mcp_apps.py)."""
    return paths.data_dir() / "installed"


def default_functionalities_path() -> Path:
    """The data directory's functionalities.json, else the repository's."""
    own = paths.data_dir() / "functionalities.json"
    return own if own.exists() else paths.REPO_ROOT / "data" / "functionalities.json"


@dataclass
class ToolImporter:
    """The app catalogue: the installed apps (``apps``), which app owns each functionality
    (``owner``), and what a spoke of each app is given (``app_spec``)."""

    functionalities_path: Path = field(default_factory=lambda: default_functionalities_path())
    # More app folders, each with manifests/ and specifications/; the data directory's installed/
    # (where `python -m hub.mcp_apps add` installs MCP servers) is always searched first.
    extra_dirs: tuple[Path, ...] = ()

    def __post_init__(self) -> None:
        self.config = self._read_config()
        self.settings_overrides = _read_settings(paths.data_dir() / "app_settings.json")
        self.apps: dict[str, InstalledApp] = {}
        self.owner: dict[str, str] = {}  # functionality -> app
        self._looks: dict[str, tuple[str, str]] = {}  # skeleton of an app or functionality name -> (name, app)
        toolkits = self.config.installed_toolkits
        in_toolkit = {f for members in toolkits.values() for f in members}
        groups = dict(toolkits)
        for f in self.config.installed_functionalities:
            if f not in in_toolkit:
                groups[f] = [f]
        for annotation in self.config.enabled_annotations:
            groups.setdefault(annotation, [annotation])
        for app_name, members in groups.items():
            self._load_app(app_name, members)

    # --- queries -------------------------------------------------------------------------------
    def functionality(self, name: str) -> Functionality | None:
        app = self.owner.get(name)
        return self.apps[app].functionalities[name] if app else None

    def all_functionalities(self) -> list[str]:
        return sorted(self.owner)

    def app_spec(self, app: str) -> AppSpec:
        return self.apps[app].spec(self.all_functionalities())

    # --- loading --------------------------------------------------------------------------------
    def _read_config(self) -> FunctionalitiesFile:
        try:
            config = FunctionalitiesFile.model_validate_json(self.functionalities_path.read_bytes())
        except FileNotFoundError as exc:
            raise ConfigError(f"{self.functionalities_path} not found; copy data/functionalities.json from the "
                              "repository or pass --functionalities PATH") from exc
        except ValidationError as exc:
            raise ConfigError(_first_error(self.functionalities_path, exc)) from exc
        for f in config.installed_functionalities:
            if config.available_functionalities and f not in config.available_functionalities:
                raise ConfigError(f"{self.functionalities_path}: installed_functionalities: {f!r} is not in "
                                  "available_functionalities")
        return config

    def _find(self, folder: str, filename: str) -> Path:
        for base in (installed_dir(), *self.extra_dirs, TOOLS_DIR):
            if (base / folder / filename).exists():
                return base / folder / filename
        return TOOLS_DIR / folder / filename

    def _load_app(self, app_name: str, members: list[str]) -> None:
        path = self._find("manifests", f"{app_name}.json")
        try:
            manifest = AppManifest.model_validate_json(path.read_bytes())
        except FileNotFoundError as exc:
            raise ConfigError(f"app {app_name!r} is installed in {self.functionalities_path} but has no "
                              f"manifest {path}") from exc
        except ValidationError as exc:
            raise ConfigError(_first_error(path, exc)) from exc
        if manifest.name != app_name:
            raise ConfigError(f"{path}: name is {manifest.name!r}, expected {app_name!r}")
        annotation = None
        if manifest.is_annotation:
            spec = self._load_annotation(app_name)
            manifest, annotation = manifest.model_copy(update={"description": spec.description}), spec.annotation_text
        self._refuse_confusable(path, app_name, [app_name, *members])
        try:  # where the code lives is checked at install, not first at spoke start
            code_read_paths(manifest)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {'mcp.python' if manifest.mcp else 'module'}: {exc}") from exc
        functionalities = {}
        for name in members:
            if name not in manifest.functionalities:
                raise ConfigError(f"{path}: functionalities: {name!r} is installed but not described here")
            if name in self.owner:
                raise ConfigError(f"functionality {name!r} is installed twice ({self.owner[name]}, {app_name})")
            # An annotation app has no code: its own spoke's LLM answers, so it acts on nothing.
            request, response, effects = (*ANNOTATION_SCHEMAS, False) if annotation else self._load_spec(name)
            functionalities[name] = Functionality(name, app_name, manifest.functionalities[name], request, response,
                                                  effects)
            self.owner[name] = app_name
        settings = {**manifest.settings, **self.settings_overrides.get(app_name, {})}
        self.apps[app_name] = InstalledApp(manifest, functionalities, annotation, settings)

    def _refuse_confusable(self, path: Path, app_name: str, names: list[str]) -> None:
        """An app's name and its functionalities' names must not look like another installed app's:
        the user answers permission questions, and the planner picks functionalities, by name."""
        for name in names:
            other, owner = self._looks.get(skeleton(name), (name, app_name))
            if owner != app_name and other != name:
                raise ConfigError(f"{path}: {name!r} is confusable with {other!r} of the installed app {owner!r} "
                                  f"(both read as {skeleton(name)!r}); rename {app_name!r}'s {name!r}")
        for name in names:
            self._looks.setdefault(skeleton(name), (name, app_name))

    def _load_annotation(self, app: str) -> AnnotationSpec:
        path = self._find("specifications", f"{app}.json")
        try:
            return AnnotationSpec.model_validate_json(path.read_bytes())
        except FileNotFoundError as exc:
            raise ConfigError(f"annotation app {app!r} has no specification {path}; write one with its "
                              "\"description\" and \"annotation_text\"") from exc
        except ValidationError as exc:
            raise ConfigError(_first_error(path, exc)) from exc

    def _load_spec(self, name: str) -> tuple[dict, dict, bool]:
        path = self._find("specifications", f"{name}.json")
        try:
            spec = json.loads(path.read_text())
            body = spec["properties"][name]["properties"]
            request, response = body["request"], body["response"]
            jsonschema.Draft7Validator.check_schema(request)
            jsonschema.Draft7Validator.check_schema(response)
        except FileNotFoundError as exc:
            raise ConfigError(f"functionality {name!r} has no specification {path}") from exc
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{path}: expected properties.{name}.properties.request and .response "
                              f"(JSON Schemas): {exc}") from exc
        except jsonschema.SchemaError as exc:
            raise ConfigError(f"{path}: not a valid JSON Schema: {exc.message}") from exc
        effects = spec.get("side_effects", True)
        if not isinstance(effects, bool):
            raise ConfigError(f"{path}: side_effects must be true or false, not {effects!r}")
        return request, response, effects


# An annotation app has no code: the LLM, steered by its annotation, answers a query.
ANNOTATION_SCHEMAS = ({"type": "object", "properties": {"query": {"type": "string"}}}, {"type": "string"})


def _read_settings(path: Path) -> dict[str, dict[str, str]]:
    """data/app_settings.json: {app: {setting: value}}, e.g. {"gmail": {"backend": "google"}}."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except ValueError as exc:
        raise ConfigError(f"{path} is not valid JSON ({exc})") from exc
    if not isinstance(data, dict) or not all(
            isinstance(v, dict) and all(isinstance(x, str) for x in v.values()) for v in data.values()):
        raise ConfigError(f"{path} must map each app to an object of string settings, "
                          "e.g. {\"gmail\": {\"backend\": \"google\"}}")
    return data


def _first_error(path: Path, exc: ValidationError) -> str:
    first = exc.errors(include_url=False)[0]
    where = ".".join(str(p) for p in first["loc"]) or "top level"
    return f"{path}: {where}: {first['msg']}"
