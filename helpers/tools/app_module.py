"""Runs in: zygote, spoke, vanillagpt.

How an app module exposes its functionalities, read the same way by a spoke and by VanillaGPT.

Either a ``FUNCTIONALITIES`` dict mapping each name to a callable
``(request: dict, hub) -> JSON value``, or, for a generic client whose functionalities
are declared in its manifest (one endpoint per functionality of a remote service),
``make_functionalities(names, settings)`` returning that dict. Anything else is an
error naming what the module must define.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

FUNCTIONALITIES_ATTR = "FUNCTIONALITIES"
FACTORY_ATTR = "make_functionalities"


def app_functions(module: ModuleType, names: list[str], settings: dict[str, str]) -> dict[str, Callable]:
    factory = getattr(module, FACTORY_ATTR, None)
    functions = factory(list(names), dict(settings)) if callable(factory) else getattr(
        module, FUNCTIONALITIES_ATTR, None)
    if not isinstance(functions, dict) or not all(callable(f) for f in functions.values()):
        raise TypeError(f"{module.__name__} must define {FUNCTIONALITIES_ATTR} (a dict of callables) "
                        f"or {FACTORY_ATTR}(names, settings) returning one")
    return functions
