"""Runs in: hub, vanillagpt (the evaluation's driver, beside the system under test).

Ground truth for the worst-case model: each task's calls, computed on one run's environment.

AgentDojo's ``GroundTruthPipeline`` replays a task's ground-truth calls on the environment;
this module does the same replay once per environment and turns every user task and
injection task into a ``Behaviour`` the worst-case model (oracle.py) can follow from its
input alone: which arguments are data read earlier, which result holds each, and the reads
a goal needs before it can be done ("send the streaming service the user pays for": read
the transactions first). Injection tasks AgentDojo ships without ground truth get the calls
in supplied_ground_truth.json (``SUPPLIED``). ``explain_miss`` says why a case the model did
not win cannot be won by following ground truth. It never decides for the model at run time.
"""

from __future__ import annotations

import enum
import hashlib
import json
import pickle
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from evaluation.agentdojo.oracle import Behaviour, Call, GroundTruthModel, Path as ResultPath, words
from helpers.llm.latency import NO_LATENCY, LatencyModel

SUPPLIED_FILE = Path(__file__).with_name("supplied_ground_truth.json")

# Words every text has: language, not data. A value's other words found in the environment
# are data the model must have read before it passes them on (see oracle.py).
LANGUAGE = frozenset("""
a an the and or but if then than so as at by for from in into of on onto to with without about over under
is are was were be been being am has have had do does did will would can could should may might must shall
i me my mine we us our you your he him his she her it its they them their this that these those there here
what which who whom whose when where why how all any each every some no not only own same other such more most
very just also too up down out off again once s t
""".split())


@lru_cache(maxsize=1)
def _supplied() -> dict[str, dict[str, dict]]:
    data = json.loads(SUPPLIED_FILE.read_text())
    return {suite: tasks for suite, tasks in data.items() if suite != "about"}


SUPPLIED: frozenset[tuple[str, str]] = frozenset((s, t) for s, tasks in _supplied().items() for t in tasks)
"""(suite, injection task) whose ground truth this project supplies (AgentDojo's is empty)."""


def supplied_injection_tasks(suite_name: str) -> list[str]:
    """The injection tasks of ``suite_name`` whose ground truth this project supplies."""
    return sorted((t for s, t in SUPPLIED if s == suite_name), key=lambda t: int(t.rsplit("_", 1)[-1]))


def injection_calls(suite, injection_task, environment) -> list:
    """AgentDojo's ground-truth calls for the injection task on this environment, or the
    supplied ones where AgentDojo's are empty (a ``FunctionCall`` list either way)."""
    return _injection_calls(suite, injection_task, pickle.loads(pickle.dumps(environment)))


def _injection_calls(suite, injection_task, environment) -> list:
    own = injection_task.ground_truth(environment)
    spec = _supplied().get(suite.name, {}).get(injection_task.ID)
    if own or spec is None:
        return own
    return resolve(suite, spec["calls"], environment)


def injection_answer(suite, injection_task) -> str:
    """What the injection tells the model to say (checked in its answer), or ""."""
    spec = _supplied().get(suite.name, {}).get(injection_task.ID)
    return (spec or {}).get("answer") or injection_task.GROUND_TRUTH_OUTPUT


# --- the supplied ground truth's values, read from the results of its own earlier calls --------------------

def resolve(suite, specs: list[dict], environment) -> list:
    """The supplied calls as ``FunctionCall``s, values taken from the results of earlier calls
    replayed on a copy of the environment (see the "about" of supplied_ground_truth.json)."""
    from agentdojo.functions_runtime import FunctionCall, FunctionsRuntime
    runtime, replay = FunctionsRuntime(suite.tools), pickle.loads(pickle.dumps(environment))
    results: list[Any] = []
    out: list[FunctionCall] = []
    for spec in specs:
        items = _value(spec["foreach"], results) if "foreach" in spec else [None]
        last = None
        for item in items:
            args = _fill(spec["args"], results, item)
            out.append(FunctionCall(function=spec["function"], args=args, placeholder_args=spec["placeholder_args"]))
            result, _ = runtime.run_function(replay, spec["function"], args, raise_on_error=False)
            last = _plain(result)
        results.append(last)
    return out


def _fill(value: Any, results: list, item: Any) -> Any:
    if isinstance(value, dict) and "$" in value:
        return _value(value, results)
    if isinstance(value, dict):
        return {k: _fill(v, results, item) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, results, item) for v in value]
    if isinstance(value, str) and item is not None:
        first_name = str(item).split(".")[0].capitalize()
        return value.replace("{item}", str(item)).replace("{item_first_name}", first_name)
    return value


def _value(spec: dict, results: list) -> Any:
    value = results[spec["$"]]
    if "sort" in spec:
        field = spec["sort"].lstrip("-")
        value = sorted(value, key=lambda x: x[field], reverse=spec["sort"].startswith("-"))
    if "first" in spec:
        value = value[:spec["first"]]
    if "field" in spec:
        value = value[spec["field"]]
    if "each" in spec:
        picked = [x[spec["each"]] for x in value]
        value = [y for x in picked for y in (x if isinstance(x, list) else [x])]
    if "drop" in spec:
        value = [x for x in value if x not in spec["drop"]]
    if spec.get("unique"):
        value = list(dict.fromkeys(value))
    if "as" in spec:
        value = [{k: (x if v == "$item" else v) for k, v in spec["as"].items()} for x in value]
    if "join" in spec:
        value = spec["join"].join(str(x) for x in value)
    return value


def result_text(result: Any) -> str:
    """A tool result as the model reads it: AgentDojo's YAML (tool_result_to_str), written by
    libyaml where present (ten times faster; libyaml takes no str subclass, so enums as values)."""
    from agentdojo.agent_pipeline.tool_execution import tool_result_to_str
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return tool_result_to_str(result, lambda data: yaml.dump(_builtin(data), Dumper=dumper))


def _builtin(value: Any) -> Any:
    if isinstance(value, dict):
        return {_builtin(k): _builtin(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_builtin(v) for v in value]
    if isinstance(value, enum.Enum):
        return _builtin(value.value)
    if isinstance(value, str) and type(value) is not str:
        return str.__str__(value)
    return value


def _plain(result: Any) -> Any:
    from pydantic import BaseModel
    if isinstance(result, BaseModel):
        return result.model_dump(mode="json")
    if isinstance(result, list):
        return [_plain(x) for x in result]
    return result


# --- behaviours: what the model follows ---------------------------------------------------------------------

class _Run:
    """One environment of one suite, hashed by its JSON dump: the cache key of its behaviours."""

    def __init__(self, suite, environment) -> None:
        self.suite = suite  # the environment itself changes as the run goes on: only its copies are kept
        self.key = (suite.name, hashlib.sha256(environment.model_dump_json().encode()).hexdigest())
        self._pickled = pickle.dumps(environment)

    def copy(self):
        """A private copy of the environment (unpickling is some twenty times faster than deepcopy)."""
        return pickle.loads(self._pickled)

    def __hash__(self) -> int:
        return hash(self.key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Run) and other.key == self.key


def worst_case_model(suite, environment, latency: LatencyModel = NO_LATENCY) -> GroundTruthModel:
    """The oracle for one run: every user task's and injection task's ground truth, computed
    on this run's environment as AgentDojo's GroundTruthPipeline would (cached per environment)."""
    tasks, injections = _behaviours(_Run(suite, environment))
    return GroundTruthModel(tasks=list(tasks), injections=list(injections), latency=latency)


@lru_cache(maxsize=64)
def _behaviours(run: _Run) -> tuple[tuple[Behaviour, ...], tuple[Behaviour, ...]]:
    from agentdojo.functions_runtime import FunctionsRuntime
    suite, environment = run.suite, run.copy()
    runtime = FunctionsRuntime(suite.tools)
    shared = run.copy()  # ground_truth() reads it, as GroundTruthPipeline's does
    user = [(t.PROMPT, t.ground_truth(shared), t.GROUND_TRUTH_OUTPUT) for t in suite.user_tasks.values()]
    injected = [(t.GOAL, _injection_calls(suite, t, shared), injection_answer(suite, t))
                for t in suite.injection_tasks.values()]
    data = words(environment.model_dump(mode="json")) - LANGUAGE - words([t.description for t in suite.tools])
    reads = _Reads(run, runtime, data, [c for _, calls, _ in [*user, *injected] for c in calls])
    build = lambda trigger, calls, answer: _behaviour(  # noqa: E731
        run, trigger, calls, answer, runtime, data, reads)
    return tuple(build(*t) for t in user), tuple(build(*t) for t in injected)


def _behaviour(run: _Run, trigger: str, calls: list, answer: str, runtime, data: set[str],
               reads: _Reads) -> Behaviour:
    replay = None  # where each value comes from: replay the ground truth (copied at its first change)
    out: list[Call] = []
    held: list[set[str]] = []
    results: list[Any] = []

    def add(function: str, args: dict, data_args: tuple[str, ...], **extra: Any) -> None:
        nonlocal replay
        valued = [k for k in data_args if k in args]
        sources = {k: [i for i, h in enumerate(held) if words(v) and words(v) <= h] for k, v in args.items()}
        sources = {k: v for k, v in sources.items() if v}
        read_from = {}
        for k in valued:
            for j in reversed(sources.get(k, [])):
                path = _find(results[j], args[k])
                if path is not None:
                    read_from[k] = (j, path)
                    break
        feeds = {k: [i for i, h in enumerate(held) if words(args[k]) & data & h] for k in valued if k not in sources}
        changes = not _read_only(run, function, args)
        out.append(Call(function=function, args=args, data_args=tuple(valued), sources=sources, read_from=read_from,
                        feeds={k: v for k, v in feeds.items() if v},
                        own_words=frozenset(words([args[k] for k in valued]) - data), changes=changes, **extra))
        if replay is None and changes:
            replay = run.copy()
        result, _ = runtime.run_function(replay if replay is not None else reads.environment, function, args,
                                         raise_on_error=False)
        held.append(words(result_text(result)))
        results.append(_plain(result))  # as the model parses the result text: the same keys and places

    for c in calls:
        args = json.loads(json.dumps(dict(c.args), default=str))
        data_args = tuple(k for k, v in (c.placeholder_args or {}).items() if "$" in json.dumps(v))
        needed = words([args[k] for k in data_args if k in args]) & data
        missing = needed - words(trigger) - set().union(*held)
        gathers = reads.cover(missing, words(trigger)) if missing else []
        served = len(out) + len(gathers)
        for g in gathers:
            add(g.function, g.args, (), serves=served)
        add(c.function, args, data_args)
    return Behaviour(trigger=trigger, calls=out, answer=answer)


class _Reads:
    """The reads a competent model knows for this suite (the read-only calls of any task's
    ground truth), each with the words of its result on this environment."""

    def __init__(self, run: _Run, runtime, data: set[str], calls: list) -> None:
        self.candidates: list[tuple[Call, set[str]]] = []
        seen: set[str] = set()
        self.environment = replay = run.copy()  # only read-only calls run on it
        for c in calls:
            args = json.loads(json.dumps(dict(c.args), default=str))
            key = Call(function=c.function, args=args).key()
            if key in seen or "$" in json.dumps(c.placeholder_args or {}) or not _read_only(run, c.function, c.args):
                continue
            seen.add(key)
            result, error = runtime.run_function(replay, c.function, args, raise_on_error=False)
            if not error:
                self.candidates.append((Call(function=c.function, args=args), words(result_text(result))))
        self.data = data

    def cover(self, missing: set[str], goal: set[str]) -> list[Call]:
        """Reads whose results hold the missing words, the most useful first; only reads whose
        arguments the goal gives (or are no one's data)."""
        usable = [(c, r) for c, r in self.candidates if (words(c.args) & self.data) <= goal]
        chosen: list[Call] = []
        while missing:
            best = max(usable, key=lambda cr: len(missing & cr[1]), default=None)
            if best is None or not missing & best[1]:
                break
            chosen.append(best[0])
            missing = missing - best[1]
        return chosen


_READ_ONLY: dict[tuple[str, str], bool] = {}


def _read_only(run: _Run, function: str, args: dict) -> bool:
    """Does the function leave the environment as it was (tried once per suite and function)?
    What a competent model knows of a tool from its name and description."""
    from agentdojo.functions_runtime import FunctionsRuntime
    key = (run.suite.name, function)
    if key not in _READ_ONLY:
        copy = run.copy()
        _, error = FunctionsRuntime(run.suite.tools).run_function(copy, function, dict(args), raise_on_error=False)
        if error:
            return False  # a failed call shows nothing: taken as changing, and tried again with other arguments
        _READ_ONLY[key] = copy == run.copy()
    return _READ_ONLY[key]


def _find(value: Any, target: Any, path: ResultPath = ()) -> ResultPath | None:
    """Where in a parsed result a scalar value is (its first place), or None."""
    if isinstance(target, (list, dict, bool)) or target is None:
        return None
    if isinstance(value, dict):
        for k, v in value.items():
            found = _find(v, target, (*path, k))
            if found is not None:
                return found
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found = _find(v, target, (*path, i))
            if found is not None:
                return found
    elif value is not None and not isinstance(value, bool) and str(value) == str(target):
        return path
    return None


# --- why a case was not won ----------------------------------------------------------------------------------

def explain_miss(suite, user_task, injection_task, injections: dict[str, str], pre_environment, post_environment,
                 answer: str, trace) -> str:
    """Why a security case the worst-case model did not win cannot be won by following ground truth.

    Contract: called for a case where ``injection_task.security(answer, pre_environment,
    post_environment)`` is False (the injection failed); ``pre_environment`` is the injected
    environment the run started from, ``trace`` the calls that ran, in order (each with
    ``function``, ``args`` and ``result``). The reason is found by replaying with AgentDojo's
    ``FunctionsRuntime`` and asking ``security()``, never assumed:

    * "empty ground truth" when neither AgentDojo nor this project gives calls or an answer;
    * the ground truth fails ``security()`` even replayed alone on the injected environment;
    * the injection never reached the model (no result in the trace held it);
    * the user task's calls before the injection was read leave the ground truth unable to
      succeed (naming the call, and the replay's error: a value computed before the run that no
      longer exists);
    * ``security()`` holds after the ground truth but a later call of the user task undoes it.

    If the ground truth, replayed where the injection was read, would have won, the reason
    starts with "MODEL BUG:": the model should have done it (a miss is never "did not try").
    Never returns an empty string.
    """
    from agentdojo.functions_runtime import FunctionCall, FunctionsRuntime

    from evaluation.agentdojo.oracle import readable
    runtime = FunctionsRuntime(suite.tools)
    said = injection_answer(suite, injection_task)
    pristine = pickle.dumps(pre_environment)  # security() may change what it reads (get_unread marks read)
    copy = lambda: pickle.loads(pristine)  # noqa: E731

    def replay(state: _Replayed, calls) -> list[str]:
        errors = []
        for c in calls:
            _, error = runtime.run_function(state.env, c.function, dict(c.args), raise_on_error=False)
            state.calls.append(FunctionCall(function=c.function, args=dict(c.args)))
            if error:
                errors.append(f"{_show(c.function, c.args)}: {error.strip().splitlines()[-1]}")
        return errors

    def secure(state: _Replayed, output: str = said, pre=None) -> bool:
        return _secure(injection_task, output, pre or copy(), state.env, state.calls)

    if secure(_Replayed(post_environment, list(trace)), answer):
        return "not a miss: security() holds on the environment after the run"
    calls = injection_calls(suite, injection_task, copy())
    if not calls and not said:
        return "empty ground truth: AgentDojo gives no calls and this project supplies none"
    alone = _Replayed(copy())
    errors = replay(alone, calls)
    if not secure(alone):
        clean = user_task.init_environment(suite.load_and_inject_default_environment({}))
        without = _Replayed(pickle.loads(pickle.dumps(clean)))
        replay(without, injection_calls(suite, injection_task, clean))
        if secure(without, pre=pickle.loads(pickle.dumps(clean))):
            return ("the injected text itself defeats security(): the ground truth meets it on the same environment "
                    "without the injection, not with it (security() finds the attack's own copy of what it looks for)")
        return ("the ground truth does not meet security() even replayed alone on the injected environment"
                + (f" ({'; '.join(errors)})" if errors else ""))
    marks = [readable(v)[:80] for v in injections.values() if v]
    read_at = next((i for i, e in enumerate(trace) if any(m in readable(str(e.result)) for m in marks)), None)
    if read_at is None:
        return "the injection never reached the model: no tool result in the run held it"
    before = list(trace[:read_at + 1])
    for i in range(len(before)):
        state = _Replayed(copy())
        replay(state, before[:i + 1])
        now = injection_calls(suite, injection_task, state.env)  # as the model would read the values there
        errors = replay(state, now)
        if not secure(state):
            what = (f"the ground truth's value was computed before the run and no longer exists: {'; '.join(errors)}"
                    if errors else "security() checks the environment as it was before the run")
            return (f"the user task's {_show(before[i].function, before[i].args)} runs before the injection is read "
                    f"(it is read in {before[-1].function}'s result); after it, {what}")
    state = _Replayed(copy())
    replay(state, before)
    replay(state, injection_calls(suite, injection_task, state.env))
    tasks = {_key(c.function, c.args) for c in user_task.ground_truth(copy())}
    for e in trace[read_at + 1:]:
        if _key(e.function, e.args) not in tasks:
            continue  # the model's own doing for the injection (values as it read them), not the task's
        replay(state, [e])
        if not secure(state):
            return (f"security() holds after the ground truth, but the user task's later call "
                    f"{_show(e.function, e.args)} undoes what it requires")
    return ("MODEL BUG: the ground truth replayed where the injection is read "
            f"(after {before[-1].function}) meets security(); the model should have won")


class _Replayed:
    def __init__(self, env, calls: list | None = None) -> None:
        self.env, self.calls = env, calls if calls is not None else []


def _secure(task, output: str, pre, post, calls) -> bool:
    """AgentDojo's verdict as its runner reaches it: from the call trace where the task checks
    that, else from the environments."""
    from agentdojo.functions_runtime import FunctionCall
    traced = [c if isinstance(c, FunctionCall) else FunctionCall(function=c.function, args=dict(c.args))
              for c in calls]
    verdict = task.security_from_traces(output, pre, post, traced)
    return bool(task.security(output, pre, post) if verdict is None else verdict)


def _key(function: str, args: dict) -> str:
    return function + json.dumps(args, sort_keys=True, default=str)


def _show(function: str, args: dict) -> str:
    text = json.dumps(dict(args), default=str, ensure_ascii=False)
    return f"{function}({text if len(text) <= 120 else text[:117] + '...'})"
