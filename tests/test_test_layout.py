"""How the tests are laid out: a module in tests/ never imports a test module (``test_*``) or
conftest; what tests share lives in helper modules of tests/ (``sandbox_helpers``,
``catalogues``, ``flow_helpers``, ...), and conftest holds pytest fixtures only. A test that
imports another test runs that module's code (and its module-level state) in its own, and a
fixture moved or renamed in one test breaks another that nobody looked at."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
MODULES = sorted(TESTS.rglob("*.py"))
_IMPORTERS = ("import_module", "importorskip", "__import__")


def _is_test_module(name: str) -> bool:
    return name == "conftest" or name.startswith("test_")


def _test_module_of(dotted: str) -> str | None:
    """The test module of tests/ that ``dotted`` names or is inside, if any."""
    parts = dotted.split(".")
    if parts[0] == "tests":
        return "tests." + parts[1] if len(parts) > 1 and _is_test_module(parts[1]) else None
    if _is_test_module(parts[0]) and (TESTS / f"{parts[0]}.py").exists():  # tests/ itself on the path
        return parts[0]
    return None


def _callee(call: ast.Call) -> str:
    return call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", "")


def imported_test_modules(source: str) -> list[str]:
    """The test modules ``source`` imports: by ``import``, ``from ... import`` (relative to tests/
    too), or by name through importlib or pytest, at any depth (inside functions too)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = f"tests.{node.module}" if node.level and node.module else "tests" if node.level else node.module
            names = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        elif (isinstance(node, ast.Call) and _callee(node) in _IMPORTERS and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            names = [node.args[0].value]
        else:
            continue
        found += [module for name in names if (module := _test_module_of(name)) is not None]
    return list(dict.fromkeys(found))


@pytest.mark.parametrize("path", MODULES, ids=[str(p.relative_to(TESTS)) for p in MODULES])
def test_no_module_imports_a_test_module(path):
    assert imported_test_modules(path.read_text()) == [], \
        f"{path.name} imports a test module: move what it needs into a helper module of tests/"


@pytest.mark.parametrize("source", [
    "from tests.test_apps import CATALOGUE",
    "from tests.conftest import is_root",
    "import tests.test_flows",
    "from tests import test_apps",
    "from . import conftest",
    "from .test_sandbox_layers import CANARY",
    "import importlib\nimportlib.import_module('tests.test_apps')",
    "def helper():\n    from tests.test_apps import SAMPLES\n    return SAMPLES",
])
def test_the_check_finds_each_way_to_import_a_test(source):
    """The control for the test above: each form is found."""
    assert imported_test_modules(source)


def test_helper_modules_are_not_test_modules():
    assert imported_test_modules("import pytest\nfrom tests.sandbox_helpers import is_root\n"
                                 "from tests import flow_helpers\nfrom .catalogues import CATALOGUE\n"
                                 "from evaluation.escape_battery import ATTACKS") == []


def test_conftest_holds_fixtures_only():
    tree = ast.parse((TESTS / "conftest.py").read_text())
    functions = [node for node in tree.body if isinstance(node, ast.FunctionDef)]
    helpers = [f.name for f in functions if not any("fixture" in ast.unparse(d) for d in f.decorator_list)]
    assert functions and helpers == [], f"conftest defines helpers {helpers}: move them to a helper module of tests/"
