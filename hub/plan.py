"""Runs in: hub.

A plan's steps as data: ``<result_k>`` references, dependency groups, and whether a call is
a planned step (same functionality, planned inputs, each step once).

Pure: no I/O. The planner (``hub.planner``) writes plans; the policy (``hub.policy``) decides with
them; nothing here asks anyone anything.

A plan is ``[PlanStep(name, input, output)]``. An input value ``"<result_k>"`` (k counted
from 1) stands for what step k returns; the hub never trusts that such a value is what
step k returned unless it checked (the ``from_result`` callback of ``planned_step``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence

from helpers.isc.messages import PlanStep

RESULT_REF = re.compile(r"<result_(\d+)>")

# ``from_result(k, value)``: may ``value`` stand for (part of) step k's result?
Verify = Callable[[int, object], bool]


def references(step: PlanStep) -> list[int]:
    """The steps (1-based) whose results this step's input refers to, in order of appearance."""
    return [int(k) for k in RESULT_REF.findall(json.dumps(step.input, ensure_ascii=False))]


def listing(steps: Sequence[PlanStep]) -> str:
    """The plan as numbered lines, ``1. name({inputs})``, as the hub shows it to an LLM."""
    return "\n".join(f"{i}. {s.name}({json.dumps(s.input, ensure_ascii=False)})" for i, s in enumerate(steps, 1))


def group_steps(steps: Sequence[PlanStep]) -> list[list[int]]:
    """Indices of steps grouped by dependency (``<result_k>`` links), in plan order."""
    parent = list(range(len(steps)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, step in enumerate(steps):
        for ref in RESULT_REF.findall(str(step.input)):
            k = int(ref) - 1
            if 0 <= k < len(steps) and k != i:
                parent[find(i)] = find(k)
    groups: dict[int, list[int]] = {}
    for i in range(len(steps)):
        groups.setdefault(find(i), []).append(i)
    return sorted(groups.values(), key=lambda g: g[0])


def planned_step(steps: Sequence[PlanStep], name: str, request: dict, used: Iterable[int] = (),
                 from_result: Verify | None = None) -> int | None:
    """The first step of the plan, not yet used, that this call is: same functionality, every
    planned input value matched, no other input set. A value the plan takes from step k's result
    (``<result_k>``) matches what ``from_result(k, value)`` accepts (anything without it)."""
    used = set(used)
    for i, s in enumerate(steps):
        if i not in used and s.name == name and _same(request, s.input if isinstance(s.input, dict) else {},
                                                      from_result):
            return i
    return None


def as_planned(steps: Sequence[PlanStep], name: str, request: dict) -> bool:
    return planned_step(steps, name, request) is not None


def _same(actual, planned, from_result: Verify | None = None) -> bool:
    if isinstance(planned, str) and (refs := RESULT_REF.findall(planned)):
        return from_result is None or any(from_result(int(k), actual) for k in refs)
    if isinstance(planned, dict):
        return (isinstance(actual, dict)
                and all(k in planned or v in (None, "", [], {}) for k, v in actual.items())
                and all(_same(actual.get(k), v, from_result) for k, v in planned.items()))
    if isinstance(planned, list):
        return (isinstance(actual, list) and len(actual) == len(planned)
                and all(_same(a, p, from_result) for a, p in zip(actual, planned, strict=True)))
    if actual is None and planned in ("", [], {}):
        return True  # left out, or given empty: the same request
    if isinstance(planned, bool) or isinstance(actual, bool) or planned is None or actual is None:
        return planned is actual
    return _scalar(actual) == _scalar(planned)


def _scalar(value) -> str:
    """A scalar as compared with the plan: text without case or spacing differences; a number
    whether the planner wrote it as a number or as text ("5" is 5)."""
    text = " ".join(str(value).split()).casefold()
    try:
        return repr(float(text))
    except ValueError:
        return text


def renumber(steps: list[PlanStep], kept: list[int]) -> list[PlanStep]:
    """Steps kept from a plan (their original positions in ``kept``), with ``<result_k>`` counted
    again among them; a reference to a dropped step becomes ``<result_0>``, which names no step."""
    position = {old + 1: new + 1 for new, old in enumerate(kept)}
    if all(position[k] == k for k in position):
        return steps

    def fix(text: str) -> str:
        return RESULT_REF.sub(lambda m: f"<result_{position.get(int(m.group(1)), 0)}>", text)
    return [s.model_copy(update={"input": map_text(s.input, fix)}) for s in steps]


def map_text(value, change: Callable[[str], str]):
    """``value`` (a plan step's input: JSON) with ``change`` applied to every string in it."""
    if isinstance(value, str):
        return change(value)
    if isinstance(value, list):
        return [map_text(v, change) for v in value]
    if isinstance(value, dict):
        return {k: map_text(v, change) for k, v in value.items()}
    return value
