"""Trust domains (ARCHITECTURE.md, "Trust domains"): every module says where it runs, and
imports go one way.

* Every module's docstring starts with ``Runs in:`` and the domains it runs in: ``hub``
  (trusted: key, memory, permissions), ``zygote`` (trusted, no secrets, forks spokes),
  ``spoke`` (next to untrusted app code, confined), ``vanillagpt`` (the baseline's one
  process), ``offline`` (scripts that run no system: figures).
* ``helpers/`` is shared ground: it never imports ``hub/``, ``spoke/`` or ``vanillagpt/``;
  the hub and VanillaGPT never import each other or ``spoke/``; ``spoke/`` imports neither.
* A module that runs in a spoke or in the zygote imports only modules that say they run
  there too: what a confined or secret-free process loads is declared, not discovered.
* And, run for real: a spoke's memory holds no module of the hub or of VanillaGPT.
"""

from __future__ import annotations

import ast
import functools
import json
import re
from pathlib import Path

import pytest

from helpers.configs import paths

ROOT = paths.REPO_ROOT
PACKAGES = ("helpers", "hub", "spoke", "vanillagpt", "evaluation", "figure")
DOMAINS = {"hub", "zygote", "spoke", "vanillagpt", "offline"}
# "Runs in: hub, spoke." or with a note: "Runs in: spoke (before any app code)."
RUNS_IN = re.compile(r"\ARuns in: ([a-z]+(?:, [a-z]+)*)(?: \([^()]*\))?\.(?:\s|\Z)")
# package -> packages it must never import
FORBIDDEN = {
    "helpers": {"hub", "spoke", "vanillagpt"},
    "hub": {"spoke", "vanillagpt"},
    "spoke": {"hub", "vanillagpt"},
    "vanillagpt": {"hub", "spoke"},
}
# Domains whose modules may import only modules declared for that domain too.
CONFINED = ("spoke", "zygote")


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(ROOT.glob("*.py")):
        found[path.stem] = path
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


MODULES = _modules()


@functools.cache
def _parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def _tree(name: str) -> ast.Module:
    return _parse(MODULES[name])


def _domains(name: str) -> set[str] | None:
    doc = ast.get_docstring(_tree(name), clean=True)
    found = RUNS_IN.match(doc or "")
    return set(found.group(1).split(", ")) if found else None


def _imports(name: str) -> set[str]:
    """Project modules ``name`` imports, anywhere in it (a function-level import counts)."""
    out: set[str] = set()
    package = name if MODULES[name].name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(_tree(name)):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            targets = [f"{base}.{a.name}" for a in node.names] + [base]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target:
                out.add(target)
    out.discard(name)
    return out


def _code_bearing(name: str) -> bool:
    """Has statements besides its docstring (a package's docstring-only __init__ has none)."""
    body = _tree(name).body
    return any(not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)) for n in body)


def test_the_rules_see_every_module():
    assert {"hub.hub", "spoke.spoke", "helpers.isc.messages", "vanillagpt.vanillagpt"} <= set(MODULES)
    assert "hub.audit" in _imports("hub.broker")
    # A function-level import counts as much as one at the top.
    assert "helpers.sandbox.confine" in _imports("spoke.spoke")


@pytest.mark.parametrize("name", [n for n in MODULES if _code_bearing(n)])
def test_every_module_says_where_it_runs(name):
    domains = _domains(name)
    assert domains is not None, (
        f"{MODULES[name].relative_to(ROOT)}: its docstring must start with 'Runs in: <domains>.' "
        f"(one or more of {sorted(DOMAINS)}, comma-separated)")
    assert domains <= DOMAINS, f"{name}: unknown domain {sorted(domains - DOMAINS)}"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_go_one_way(name):
    package = name.split(".")[0]
    wrong = sorted(m for m in _imports(name) if m.split(".")[0] in FORBIDDEN.get(package, ()))
    assert not wrong, f"{name} imports {wrong}: {package}/ must never import {sorted(FORBIDDEN[package])}"


@pytest.mark.parametrize("name", [n for n in MODULES if _code_bearing(n)])
def test_confined_code_loads_only_what_is_declared_for_it(name):
    domains = _domains(name) or set()
    for domain in CONFINED:
        if domain not in domains:
            continue
        undeclared = sorted(m for m in _imports(name) if _code_bearing(m) and domain not in (_domains(m) or set()))
        assert not undeclared, f"{name} runs in the {domain} but imports {undeclared}, not declared to run there"


def test_the_rules_catch_a_wrong_import(tmp_path, monkeypatch):
    """The control: a helpers module importing the hub, and a spoke module importing a hub-only
    module, are both caught."""
    bad = tmp_path / "bad.py"
    bad.write_text('"""Runs in: spoke.\n\nA planted module."""\nfrom hub.broker import SpokeBroker\n')
    monkeypatch.setitem(MODULES, "helpers.bad", bad)
    with pytest.raises(AssertionError, match="must never import"):
        test_imports_go_one_way("helpers.bad")
    with pytest.raises(AssertionError, match="not declared to run there"):
        test_confined_code_loads_only_what_is_declared_for_it("helpers.bad")


def test_a_spoke_holds_no_module_of_the_hub_or_vanillagpt(hub):
    from helpers.isc.messages import AppResponse
    from helpers.sandbox.app_spec import AppSpec
    from helpers.sandbox.sandbox import SANDBOX_APP
    spoke = hub.start(AppSpec(name="sandbox", module=SANDBOX_APP.module))
    try:
        outcome = hub.call(spoke, "run_code", {"code": "import json, sys; print(json.dumps(sorted(sys.modules)))"},
                           timeout=20)
    finally:
        hub.stop(spoke)
    assert isinstance(outcome, AppResponse), outcome
    loaded = json.loads(outcome.response["stdout"])
    assert "spoke.spoke" in loaded and "helpers.isc.channel" in loaded  # the probe sees project modules
    # The one exception: the repository's app packages (case 8's MCP servers), preloaded empty.
    from helpers.tools.tool_importer import APP_PACKAGES_IN_REPO
    declared = {p for name in APP_PACKAGES_IN_REPO for p in (name, name.rsplit(".", 1)[0])}
    assert all(not _code_bearing(name) for name in declared)  # docstrings only: no code of theirs runs
    assert not [m for m in loaded if m.split(".")[0] in ("hub", "vanillagpt", "evaluation") and m not in declared]
