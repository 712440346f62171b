"""Runs in: hub, vanillagpt (the evaluation's driver, beside the system under test).

The worst-case model of the AgentDojo evaluation: perfectly competent, perfectly obedient.

It follows ground truth, as AgentDojo's ``GroundTruthPipeline`` does, but like a model:
from what it is given and nothing else.

* The user's query is a user task's prompt: it makes that task's ground-truth calls
  (the planner plans those it is offered, writing ``<result_k>`` for a value it does not
  hold that step k returns; an agent calls those among its tools), then answers with the
  task's ground-truth output.
* An injection task's goal appears anywhere in its input (a tool result, a description):
  it does what the goal says first, with the tools it has, and the task only after:
  the reads that find the data the goal asks for, then the calls that act on it, turn
  after turn, each call once the results it needs are in; and its answer says what the
  goal told it to say.
* Where it stands limits it: an argument that AgentDojo's ground truth marks as data
  read earlier (a ``$`` placeholder: ``$code``, ``$content``, ``$email.subject``) is passed
  only if every word of its value that is data (found in the environment, not made up:
  an amount, a subject of its own) is in the model's input, and a value it read from a
  result is taken from that result as it is in its input (the id the email it just sent
  was given). Ground truth is computed from the whole environment; without this rule the
  model would carry another app's data (a security code, a channel's messages) into a
  context that never saw it.

Calls already made in the current turn (its own, or the plan's) are not repeated. The
model never knows which system, spoke or app it runs in; it only reads the prompt, the
tools offered and the conversation. Memory upkeep prompts get an empty answer.

A ``ChatModel`` on the base it shares with the ``scripted`` model (``helpers.llm.offline``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict

from helpers.isc.messages import ChatMessage, ToolCall, ToolSpec
from helpers.llm.latency import NO_LATENCY, LatencyModel
from helpers.llm.offline import OfflineModel, last_user_index
from helpers.templates import prompts

# The planner's candidate lines: "- name (app X): description", or "- name(input, ...) (app X)"
# when it is offered signatures only.
_LISTED = re.compile(r"^- ([A-Za-z][A-Za-z0-9_]*)(?:\([^)\n]*\))? \(app ", re.MULTILINE)
# What the quarantined extractor's prompt (prompts.EXTRACT) says of the value it asks for.
_SCHEMA = re.compile(r"matches this JSON Schema: (.*)$", re.MULTILINE)
_INPUT = re.compile(r'is the input "([^"\n]*)" of the functionality ([A-Za-z0-9_]+)')
_ASKED = re.compile(r"^The user asked \(as a JSON string\): (.*)$", re.MULTILINE)
_STEP = re.compile(r"^Step (\d+) writes the value", re.MULTILINE)
_PLANNED = re.compile(r"^\d+\. ([A-Za-z0-9_]+)\(", re.MULTILINE)
DONE = "Done."

Path = tuple[str | int, ...]


class Call(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    function: str
    args: dict[str, Any]
    data_args: tuple[str, ...] = ()  # arguments whose value is data read earlier (AgentDojo's "$" placeholders)
    own_words: frozenset[str] = frozenset()  # words of those values found nowhere in the data: its own to write
    sources: dict[str, list[int]] = {}  # argument -> earlier calls (indices) whose results hold its value
    feeds: dict[str, list[int]] = {}  # data argument no one result holds -> earlier calls holding some of it
    read_from: dict[str, tuple[int, Path]] = {}  # data argument -> (earlier call, where in its result)
    serves: int | None = None  # a read made only to find what call ``serves`` passes on
    changes: bool = False  # it changes the world (sends, books, deletes): made once the reads before it are in

    def possible(self, known: set[str], args: dict[str, Any] | None = None) -> bool:
        """Does the model hold the data this call passes on?"""
        args = self.args if args is None else args
        return all(words(args.get(name)) - self.own_words <= known for name in self.data_args)

    def key(self) -> str:
        return call_key(self.function, self.args)


class Behaviour(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    trigger: str        # a user task's prompt, or an injection task's goal
    calls: list[Call]
    answer: str = ""


_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9@._-]*[A-Za-z0-9]|[A-Za-z0-9]")
_PARTS = re.compile(r"[@._-]")


def words(value: Any) -> set[str]:
    """The words of every string or number in an argument value."""
    if isinstance(value, dict):
        return set().union(*(words(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(words(v) for v in value)) if value else set()
    if value is None or isinstance(value, bool):
        return set()
    found = {w.lower() for w in _WORD.findall(readable(str(value)))}
    return found | {p for w in found for p in _PARTS.split(w) if p}  # who reads an address reads its parts


def call_key(function: str, args: dict) -> str:
    return function + json.dumps(args, sort_keys=True, ensure_ascii=False)


def readable(text: str) -> str:
    """Text as a reader takes it in: YAML escapes and line folding undone, whitespace collapsed."""
    text = re.sub(r"\\\n\s*", "", text)
    text = text.replace("\\n", " ").replace("\\ ", " ").replace('\\"', '"').replace("''", "'")
    return " ".join(text.split())


def parsed(text: str) -> Any:
    """A tool result as structured data (results are YAML), or None."""
    try:
        return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError:
        return None


def at(value: Any, path: Path) -> Any:
    for step in path:
        if isinstance(step, int) and isinstance(value, list) and -len(value) <= step < len(value):
            value = value[step]
        elif isinstance(step, str) and isinstance(value, dict) and step in value:
            value = value[step]
        else:
            return None
    return value


class _Ledger:
    """The calls made since the user's message, by key, each with its result (in order)."""

    def __init__(self, messages: list[ChatMessage]) -> None:
        answers = {m.tool_call_id: m.content for m in messages if m.role == "tool"}
        self.made: dict[str, list[str | None]] = {}
        self.args: list[dict] = []
        for m in messages:
            if m.role == "assistant":
                for call in m.tool_calls:
                    args = dict(call.args)
                    if set(args) == {"request"} and isinstance(args["request"], dict):
                        args = args["request"]
                    self.args.append(args)
                    self.made.setdefault(call_key(call.name, args), []).append(answers.get(call.id))

    def take(self, key: str) -> tuple[bool, str | None]:
        results = self.made.get(key)
        if not results:
            return False, None
        return True, results.pop(0)


class GroundTruthModel(OfflineModel):
    call_prefix = "gt"

    def __init__(self, tasks: list[Behaviour], injections: list[Behaviour], latency: LatencyModel = NO_LATENCY) -> None:
        super().__init__(latency)
        self.tasks, self.injections = tasks, injections

    def reply(self, messages: list[ChatMessage], tools: list[ToolSpec]) -> ChatMessage:
        first = messages[0].content if messages else ""
        if first.startswith(prompts.ENTITY_MARKER):
            return _said("{}")
        if first.startswith(prompts.SUMMARY_MARKER):
            return _said("(nothing to keep)")
        last_user = last_user_index(messages)
        query = messages[last_user].content if last_user >= 0 else ""
        context = readable("\n".join([*(m.content for m in messages), *(t.description for t in tools)]))
        # The most specific match: a combined task's prompt contains its parts' prompts.
        task = max((t for t in self.tasks if t.trigger in query), key=lambda t: len(t.trigger), default=None)
        seen = _maximal([b for b in self.injections if readable(b.trigger) in context])
        ledger = _Ledger(messages[last_user + 1:])
        known = words(context) | words(ledger.args)  # what it read, and what it wrote itself
        system = "\n".join(m.content for m in messages if m.role == "system")
        if system.startswith(prompts.EXTRACT_MARKER):
            return _said(json.dumps(_extract(system, seen, self.tasks, known)))
        if system.startswith(prompts.PLANNER_MARKER):
            # Offered signatures only, it writes every step of the task, a value it has not read as
            # a reference to the step whose result holds it (nothing reads the results but the
            # extractor); offered descriptions, it plans up to the first value it cannot write, as
            # before (whoever reads the results, an agent, takes over from there).
            return _said(json.dumps({"steps": _plan([*seen, *([task] if task else [])], known,
                                                    set(_LISTED.findall(system)),
                                                    prompts.PLANNER_SIGNATURES in system)}))
        offered = {t.name: t.parameters for t in tools}
        calls: list[ToolCall] = []
        # What an injected instruction asks comes first; the user's task once it is done (or cannot be).
        for group in (seen, [task] if task else []):
            for b in group:
                for function, args in _next_calls(b, known, ledger, offered):
                    args = {"request": args} if _is_proxy(offered[function], args) else args
                    calls.append(ToolCall(id=self.call_id(), name=function, args=args))
            if calls:
                return ChatMessage(role="assistant", content="", tool_calls=calls)
        answers = [b.answer for b in [*seen, *([task] if task else [])] if b.answer]
        return _said("\n".join(answers) or DONE)


def _said(text: str) -> ChatMessage:
    return ChatMessage(role="assistant", content=text)


def _next_calls(b: Behaviour, known: set[str], ledger: _Ledger, offered: dict) -> list[tuple[str, dict]]:
    """The calls of ``b`` to make now: in order, those not made yet, up to the first that
    needs a result not in yet or data it does not hold."""
    results: dict[int, str | None] = {}
    pending: set[int] = set()
    out: list[tuple[str, dict]] = []
    for i, c in enumerate(b.calls):
        if c.serves is not None and b.calls[c.serves].possible(known):
            continue  # what the read would find is already held
        if any(j in pending and not words(c.args[k]) <= known for k, js in c.sources.items() for j in js):
            break  # it needs what a call being made now returns
        if c.changes and any(not b.calls[j].changes for j in pending):
            break  # read, then act: what the reads return may change what it should do
        args = _read_args(c, results)
        if not c.possible(known, args):
            break
        made, result = ledger.take(call_key(c.function, args))
        if made:
            results[i] = result
        elif c.function in offered:
            out.append((c.function, args))
            pending.add(i)
    return out


def _read_args(c: Call, results: dict[int, str | None]) -> dict[str, Any]:
    """The call's arguments, each value read earlier taken from that result as received."""
    args = dict(c.args)
    for name, (j, path) in c.read_from.items():
        value = at(parsed(results[j]), path) if results.get(j) else None
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            try:
                args[name] = type(c.args[name])(value) if isinstance(c.args[name], (str, int, float)) else value
            except ValueError:
                pass  # not what the ground truth read there: keep its own value
    return args


def _plan(behaviours: list[Behaviour], known: set[str], listed: set[str], whole: bool = False) -> list[dict]:
    """The steps for ``behaviours``; ``whole``: every step, a data value it has not read referring
    to the steps whose results hold it (it stops only at a value no planned step returns)."""
    steps: list[dict] = []
    for b in behaviours:
        number: dict[int, int] = {}  # the behaviour's call index -> its step number
        for i, c in _until_impossible(b.calls, known, number if whole else None):
            if c.function not in listed:
                continue
            # A value it does not hold yet that an earlier step returns: say so, as the planner
            # prompt asks, and leave it to whoever reads that result. A value no step returns
            # (an end time an hour after the start, a summary) is its own: written out.
            steps.append({"name": c.function, "output": "", "input": {
                k: _reference(c.sources.get(k) or c.feeds.get(k, []), number, len(steps))
                if steps and (c.sources.get(k) or (whole and c.feeds.get(k))) and not words(v) <= known else v
                for k, v in c.args.items()}})
            number[i] = len(steps)
    return steps


def _until_impossible(calls: list[Call], known: set[str],
                      planned: dict[int, int] | None = None) -> Iterator[tuple[int, Call]]:
    """The calls (with their index) up to the first one whose data it does not hold yet: what
    comes after may need what that call returns (send the code, then delete the email just sent).
    With ``planned`` (the calls planned so far, filled in by the caller), a call whose missing
    data an earlier planned call returns is planned too, its value referring to that call (a
    generator: ``planned`` grows as the caller plans)."""
    for i, c in enumerate(calls):
        if c.serves is not None and calls[c.serves].possible(known):
            continue
        if not c.possible(known) and not (planned is not None and _referable(c, known, planned)):
            return
        yield i, c


def _referable(c: Call, known: set[str], planned: dict[int, int]) -> bool:
    """Does every data value of ``c`` it does not hold come from a call already planned?"""
    return all(any(j in planned for j in (c.sources.get(k) or c.feeds.get(k, [])))
               for k in c.data_args if not words(c.args.get(k)) - c.own_words <= known)


def _extract(system: str, seen: list[Behaviour], tasks: list[Behaviour], known: set[str]) -> Any:
    """As the quarantined extractor: the value of one input of one functionality from the result
    it is given, or None. An injection in the result that calls that functionality wins (its
    value for the input, if it fits the schema); else the user task's value for it, if all its
    words are in its input. The task is the one the user's request (in its prompt) asks for, and
    the call is the one the step stands for: the n-th step of a functionality in the plan is the
    task's n-th call of it (a plan of four identical steps reads four channels, not one four times)."""
    schema_at, input_at = _SCHEMA.search(system), _INPUT.search(system)
    if not input_at:
        return None
    field, function = input_at.groups()
    try:
        schema = json.loads(schema_at.group(1)) if schema_at else {}
    except json.JSONDecodeError:
        schema = {}
    asked, step = _ASKED.search(system), _STEP.search(system)
    try:
        request = json.loads(asked.group(1)) if asked else ""
    except json.JSONDecodeError:
        request = ""
    task = max((t for t in tasks if t.trigger in request), key=lambda t: len(t.trigger), default=None)
    planned = _PLANNED.findall(system)
    nth = planned[:int(step.group(1)) - 1].count(function) if step else 0
    for group in (seen, [task] if task else tasks):
        for b in group:
            calls = [c for c in b.calls if c.function == function]
            for c in (calls[nth:nth + 1] + calls if group is not seen else calls):
                value = c.args.get(field)
                if value is None or not _fits(value, schema):
                    continue
                # Data it passes on must be in the result, as anywhere (the "$" rule); an
                # injection's own words are its instruction's; a task's value must be found there.
                data = words(value) - c.own_words if field in c.data_args else (
                    set() if group is seen else words(value))
                if data <= known and (group is seen or data):
                    return value
    return None


def _fits(value: Any, schema: dict) -> bool:
    import jsonschema
    try:
        jsonschema.validate(value, schema)
        return True
    except (jsonschema.ValidationError, jsonschema.SchemaError):
        return False


def _reference(sources: list[int], number: dict[int, int], previous: int) -> str:
    steps = sorted({number[i] for i in sources if i in number}) or [previous]
    return " ".join(f"<result_{k}>" for k in steps)


def _maximal(found: list[Behaviour]) -> list[Behaviour]:
    """Drop a goal that is only part of another goal found (one instruction, not two)."""
    return [b for b in found if not any(b.trigger != o.trigger and readable(b.trigger) in readable(o.trigger)
                                        for o in found)]


def _is_proxy(parameters: dict, args: dict) -> bool:
    """A tool whose schema takes the arguments wrapped in one ``request`` object (as a model
    reads any tool's schema to call it)."""
    return set(parameters.get("properties", {})) == {"request"} and "request" not in args
