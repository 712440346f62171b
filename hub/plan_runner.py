"""Runs in: hub.

Strict mode: the hub carries out a plan as code, and each app phrases only its own results.

No LLM that can cause a call reads an app's output here. The steps run in plan order,
each in its app's spoke as a plain functionality call (no agent): its input is the
plan's, with every ``<result_k>`` resolved by the hub: the value is taken out of step k's
result by the quarantined LLM (``hub.quarantine``: no tools, that result only, the input's
JSON Schema, and the user's request with the plan to say which value), even when it is the
whole result. A value that crosses from one app to another is a declared flow (the plan
says so): the user is asked (collab, expected) with the value and the app it comes from,
and told when a destination in it sits inside a longer text of that result
(``hub.provenance``). Then each app's spoke phrases that app's results, with no tools (all
apps at once, each in its own thread and spoke), and the hub assembles the reply with one
block per app: no LLM context holds two apps' outputs, so one app's output cannot change
what the user is told about another.

Permissions are asked per app, once, before anything runs (the plan review: every step
with its inputs; a step naming a destination the user never gave is asked on its own).
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import jsonschema

from helpers.isc.messages import AppResponse, DoneCall, FinalResponse, PlanStep
from helpers.permission.prompt import shown
from helpers.utilities.errors import MemoryUnavailable, SecGPTError
from helpers.utilities.text import as_text
from hub.broker import SpokeHandle, describe
from hub.plan import RESULT_REF, renumber
from hub.policy import ROUTING
from hub.provenance import embedded
from hub.quarantine import extract

if TYPE_CHECKING:
    from hub.hub_operator import Execution, HubOperator


@dataclass
class _Run:
    query: str
    steps: list[PlanStep]
    results: dict[int, object] = field(default_factory=dict)      # step (0-based) -> its response
    done: dict[str, list[DoneCall]] = field(default_factory=dict)  # app -> its calls, in order
    notes: list[str] = field(default_factory=list)
    answers: list[str] = field(default_factory=list)                # annotation apps that answer themselves


def run_plan(op: HubOperator, query: str, steps: list[PlanStep], dropped: list[str]) -> Execution:
    from hub.hub_operator import Execution
    owner = op.importer.owner
    apps = list(dict.fromkeys(owner[s.name] for s in steps))
    notes: list[str] = []
    left_out: list[int] = []
    approved: set[str] = set()
    for app in apps:  # one question per app, listing the whole plan; each unknown destination apart
        out, told = op.ask_plan(app, steps)
        if out is None:
            return Execution(None, app, refused=app, dropped=dropped)
        notes += told
        left_out += out
        approved |= {s.name for i, s in enumerate(steps) if owner[s.name] == app and i not in out}
    kept = [i for i in range(len(steps)) if i not in left_out]
    steps = renumber([steps[i] for i in kept], kept)
    try:
        entities = op.memory.entities("hub")  # read once, for every app's steps
        for app in apps:
            it = iter(op.guard_plan_data(app, [s for s in steps if owner[s.name] == app], entities))
            steps = [next(it) if owner[s.name] == app else s for s in steps]
    except MemoryUnavailable as exc:
        op.failed(exc)
        return Execution(f"Sorry, {exc}.", ROUTING, dropped=dropped)
    run = _Run(query, steps, notes=notes)
    for i, step in enumerate(steps):
        _run_step(op, run, approved, i, step)
    told = [app for app in apps if app in run.done or app in run.answers]
    texts = list(zip(told, _phrase_all(op, query, {app: run.done.get(app, []) for app in told}), strict=True))
    if not texts:
        text = "I could not run any step of the plan."
    elif len(texts) == 1:
        text = texts[0][1]
    else:
        text = "\n\n".join(f"From {app}:\n{answer}" for app, answer in texts)
    route = apps[0] if len(apps) == 1 else ROUTING
    return Execution(text, route, dropped=dropped, notes=run.notes)


def _run_step(op: HubOperator, run: _Run, approved: set[str], i: int, step: PlanStep) -> None:
    f = op.importer.functionality(step.name)
    app = f.app
    if step.name not in approved:
        run.notes.append(f"I did not run step {i + 1} ({step.name}): it was not allowed.")
        return
    if _annotation_app(op, app):
        run.answers.append(app)  # no code to call: its own spoke's LLM answers, with no tools
        return
    request, why = _resolve(op, run, i, step, f.request_schema)
    if request is None:
        run.notes.append(f"I did not run step {i + 1} ({step.name}): {why}.")
        return
    try:
        jsonschema.validate(request, f.request_schema)
    except jsonschema.ValidationError as exc:
        run.notes.append(f"I did not run step {i + 1} ({step.name}): its input does not match its "
                         f"specification ({exc.message}).")
        return
    try:
        target = op._spoke(app)
    except SecGPTError as exc:
        run.notes.append(f"I did not run step {i + 1} ({step.name}): {exc}.")
        return
    op.states[app].begin()  # a plain call: nothing is expected of the app's own requests
    op.emit("call", f"hub -> {app}.{step.name} (step {i + 1} of the plan)")
    outcome = op.broker.call(target, step.name, request)
    if not isinstance(outcome, AppResponse):
        run.notes.append(f"Step {i + 1} ({step.name}) failed: {describe(outcome)}.")
        return
    try:
        jsonschema.validate(outcome.response, f.response_schema)
    except jsonschema.ValidationError as exc:
        run.notes.append(f"Step {i + 1} ({step.name}) answered outside its specification: {exc.message}.")
        return
    run.results[i] = outcome.response
    run.done.setdefault(app, []).append(DoneCall(name=step.name, input=request, result=as_text(outcome.response)))


def _resolve(op: HubOperator, run: _Run, i: int, step: PlanStep, schema: dict) -> tuple[dict | None, str]:
    """The step's input with every ``<result_k>`` replaced by a value the hub took from step k's
    result; (None, why) when a value is missing or a flow to another app was refused."""
    planned = step.input if isinstance(step.input, dict) else {}
    target = op.importer.owner[step.name]
    request: dict = {}
    taken: dict[str, list[int]] = {}  # input -> the steps whose results its value was taken from
    for name, template in planned.items():
        value, why, taken[name] = _value(op, run, i, name, template, _field_schema(schema, name))
        if why:
            return None, why
        request[name] = value
    for name, refs in taken.items():
        sources = {k: op.importer.owner[run.steps[k - 1].name] for k in refs}
        if all(source == target for source in sources.values()):
            continue  # an app's own result back to it
        hidden = embedded(request[name], *(run.results[k - 1] for k in refs))
        for k, source in sources.items():
            if source == target:
                continue
            ask = op.policy.declared_flow(op.ctx, source, target, step.name, name, k, request[name], hidden)
            if not op.permissions.check(ask.request).allowed:
                return None, f"you did not allow passing {source}'s result to {target}"
    return request, ""


def _value(op: HubOperator, run: _Run, i: int, name: str, template,
           schema: dict) -> tuple[object, str, list[int]]:
    """Input ``name`` of step ``i``: (value, "", the steps whose results it was taken from),
    or (None, why, [])."""
    step = run.steps[i]
    written = template if isinstance(template, str) else json.dumps(template, ensure_ascii=False)
    if not (refs := [int(k) for k in RESULT_REF.findall(written)]):
        return template, "", []
    for k in refs:
        if k - 1 not in run.results:
            return None, f"it needs the result of step {k}, which did not run", []
    # Even "<result_k>" alone goes through the quarantined LLM: the whole result is right for a
    # message body and wrong for a place or a date, and which one only a model can tell.
    if len(set(refs)) == 1 or RESULT_REF.sub("", written).strip(' "') == "":
        # One result, or a value that is in one of several ("<result_1> <result_2>"): taken out of
        # each in turn, one result per call; the first value found is the one.
        found = None
        for k in dict.fromkeys(refs):
            found = extract(op.llm, as_text(run.results[k - 1]), k=k, template=written, field=name,
                            functionality=step.name, schema=schema, **_where(run, i))
            if found.ok:
                return found.value, "", [k]  # the flow is from that result only
        return None, found.error, []
    if not isinstance(template, str):
        return None, f"its input {name} combines several results, which strict mode does not do", []
    # Text made of several results: each part taken out on its own (one result per LLM call).
    parts: dict[int, str] = {}
    for k in dict.fromkeys(refs):
        found = extract(op.llm, as_text(run.results[k - 1]), k=k, template=f"<result_{k}>", field=name,
                        functionality=step.name, schema={"type": "string"}, **_where(run, i))
        if not found.ok:
            return None, found.error, []
        parts[k] = str(found.value)
    value = RESULT_REF.sub(lambda m: parts[int(m.group(1))], template)
    if not _fits(value, schema):
        return None, f"its input {name} does not match its schema", []
    return value, "", list(parts)


def _where(run: _Run, i: int) -> dict:
    """What the quarantined LLM is told of the value's place: the user's request, the plan, the
    step (0-based ``i``): trusted text that says which value of the result is wanted (the third
    of the four identical steps that each take a channel out of one list)."""
    return {"request": run.query, "plan": run.steps, "step": i + 1}


def _field_schema(schema: dict, name: str) -> dict:
    """The JSON Schema of input ``name``, with the definitions its ``$ref``s point to."""
    properties = schema.get("properties") if isinstance(schema, dict) else None
    field = properties.get(name) if isinstance(properties, dict) else None
    if not isinstance(field, dict):
        return {}
    shared = {k: schema[k] for k in ("$defs", "definitions") if k in schema and k not in field}
    return {**field, **shared}


def _fits(value, schema: dict) -> bool:
    try:
        jsonschema.validate(value, schema or {})
    except jsonschema.ValidationError:
        return False
    return True


def _annotation_app(op: HubOperator, app: str) -> bool:
    installed = op.importer.apps.get(app)
    return installed is not None and installed.manifest.is_annotation


def _phrase_all(op: HubOperator, query: str, done: dict[str, list[DoneCall]]) -> list[str]:
    """Every app's results phrased, all at once: each app in its own spoke, so the phrasings
    share nothing but the wait (a plan with two apps costs one LLM round trip here, not two).
    They start after the last step (a step's code may still call another app, which must not be
    found busy phrasing), and spokes are started here, one at a time, before any phrasing."""
    told: dict[str, str] = {}
    handles: dict[str, SpokeHandle] = {}
    for app in done:
        try:
            handles[app] = op._spoke(app)
        except SecGPTError as exc:
            told[app] = f"(could not be told: {exc})"
            continue
        op.states[app].begin()

    def phrase(app: str) -> str:
        return _phrase(op, handles[app], query, done[app])

    if len(handles) > 1:
        with ThreadPoolExecutor(max_workers=len(handles), thread_name_prefix="secgpt-phrase") as pool:
            told.update(zip(handles, pool.map(phrase, handles), strict=True))
    else:
        told.update((app, phrase(app)) for app in handles)
    return [told[app] for app in done]


def _phrase(op: HubOperator, handle: SpokeHandle, query: str, done: list[DoneCall]) -> str:
    """One app's results told by its own spoke (its LLM sees only them)."""
    outcome = op.broker.query(handle, query, [], [], results=done, tools=False)
    if isinstance(outcome, FinalResponse):
        return outcome.text
    results = "; ".join(shown(c.result, 200) for c in done)
    return f"(could not be told: {describe(outcome)}); the results were: {results}"
