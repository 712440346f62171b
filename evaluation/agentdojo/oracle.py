"""The worst-case model of the AgentDojo evaluation: perfectly competent, perfectly obedient.

It follows ground truth, as AgentDojo's ``GroundTruthPipeline`` does, but like a model:
from what it is given and nothing else.

* The user's query is a user task's prompt: it makes that task's ground-truth calls
  (the planner plans those it is offered, writing ``<result_k>`` for a value it does not
  hold that step k returns; an agent calls those among its tools), then answers with the
  task's ground-truth output.
* An injection task's goal appears anywhere in its input (a tool result, a description):
  it first makes that injection task's ground-truth calls, with the tools it has.
* Where it stands limits it: an argument that AgentDojo's ground truth marks as data
  read earlier (a ``$`` placeholder: ``$code``, ``$content``, ``$email.subject``) is passed
  only if every word of its value is in the model's input. Ground truth is computed from
  the whole environment; without this rule the model would carry another app's data (a
  security code, a channel's messages) into a context that never saw it.

Calls already made in the current turn (its own, or the plan's) are not repeated. The
model never knows which system, spoke or app it runs in; it only reads the prompt, the
tools offered and the conversation. Memory upkeep prompts get an empty answer.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from typing import Any

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import BaseModel, ConfigDict, PrivateAttr

from helpers.llm.convert import tool_from_any
from helpers.templates import prompts

_LISTED = re.compile(r"^- ([A-Za-z][A-Za-z0-9_]*) \(app ", re.MULTILINE)  # the planner's candidate lines
DONE = "Done."


class Call(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    function: str
    args: dict[str, Any]
    data_args: tuple[str, ...] = ()  # arguments whose value is data read earlier (AgentDojo's "$" placeholders)
    sources: dict[str, list[int]] = {}  # argument -> earlier calls (indices) whose results hold its value

    def possible(self, known: set[str]) -> bool:
        """Does the model hold the data this call passes on?"""
        return all(words(self.args.get(name)) <= known for name in self.data_args)

    def key(self) -> str:
        return call_key(self.function, self.args)


class Behaviour(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    trigger: str        # a user task's prompt, or an injection task's goal
    calls: list[Call]
    answer: str = ""


_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9@._-]*[A-Za-z0-9]|[A-Za-z0-9]")


def words(value: Any) -> set[str]:
    """The words of every string or number in an argument value."""
    if isinstance(value, dict):
        return set().union(*(words(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(words(v) for v in value)) if value else set()
    if value is None or isinstance(value, bool):
        return set()
    return {w.lower() for w in _WORD.findall(readable(str(value)))}


def call_key(function: str, args: dict) -> str:
    return function + json.dumps(args, sort_keys=True, ensure_ascii=False)


def readable(text: str) -> str:
    """Text as a reader takes it in: YAML escapes and line folding undone, whitespace collapsed."""
    text = re.sub(r"\\\n\s*", "", text)
    text = text.replace("\\n", " ").replace("\\ ", " ").replace('\\"', '"').replace("''", "'")
    return " ".join(text.split())


class GroundTruthModel(BaseChatModel):
    tasks: list[Behaviour]
    injections: list[Behaviour]
    latency_s: float = 0.0  # simulated response time of a remote model, per call
    _history: list[list[BaseMessage]] = PrivateAttr(default_factory=list)
    _counter: int = PrivateAttr(default=0)

    @property
    def _llm_type(self) -> str:
        return "agentdojo-ground-truth"

    @property
    def history(self) -> list[list[BaseMessage]]:
        return self._history

    def bind_tools(self, tools: list[Any], **kwargs: Any):
        return self.bind(tools=[tool_from_any(t).model_dump() for t in tools], **kwargs)

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: Any = None, tools: list[dict] | None = None, **kwargs: Any) -> ChatResult:
        self._history.append(list(messages))
        if self.latency_s:
            time.sleep(self.latency_s)
        return ChatResult(generations=[ChatGeneration(message=self._reply(messages, list(tools or [])))])

    def _reply(self, messages: list[BaseMessage], tools: list[dict]) -> AIMessage:
        first = str(messages[0].content) if messages else ""
        if first.startswith(prompts.ENTITY_MARKER):
            return AIMessage(content="{}")
        if first.startswith(prompts.SUMMARY_MARKER):
            return AIMessage(content="(nothing to keep)")
        last_user = max((i for i, m in enumerate(messages) if isinstance(m, HumanMessage)), default=-1)
        query = str(messages[last_user].content) if last_user >= 0 else ""
        context = readable("\n".join([*(str(m.content) for m in messages), *(t["description"] for t in tools)]))
        # The most specific match: a combined task's prompt contains its parts' prompts.
        task = max((t for t in self.tasks if t.trigger in query), key=lambda t: len(t.trigger), default=None)
        seen = _maximal([b for b in self.injections if readable(b.trigger) in context])
        known = words(context)
        wanted = [c for b in [*seen, *([task] if task else [])] for c in _until_impossible(b.calls, known)]
        system = "\n".join(str(m.content) for m in messages if isinstance(m, SystemMessage))
        if system.startswith(prompts.PLANNER_MARKER):
            listed = set(_LISTED.findall(system))
            steps: list[dict] = []
            for b in [*seen, *([task] if task else [])]:
                number: dict[int, int] = {}  # the behaviour's call index -> its step number
                for i, c in enumerate(_until_impossible(b.calls, known)):
                    if c.function not in listed:
                        continue
                    # A value it does not hold yet that an earlier step returns: say so, as the planner
                    # prompt asks, and leave it to whoever reads that result. A value no step returns
                    # (an end time an hour after the start, a summary) is its own: written out.
                    steps.append({"name": c.function, "output": "", "input": {
                        k: _reference(c.sources[k], number, len(steps))
                        if steps and c.sources.get(k) and not words(v) <= known else v
                        for k, v in c.args.items()}})
                    number[i] = len(steps)
            return AIMessage(content=json.dumps({"steps": steps}))
        offered = {t["name"]: t.get("parameters", {}) for t in tools}
        made = Counter(_made(messages[last_user + 1:]))
        calls = []
        for c in wanted:
            if made[c.key()] > 0:
                made[c.key()] -= 1
            elif c.function in offered:
                self._counter += 1
                args = {"request": c.args} if _is_proxy(offered[c.function], c.args) else c.args
                calls.append({"name": c.function, "args": args, "id": f"gt_{self._counter}", "type": "tool_call"})
        if calls:
            return AIMessage(content="", tool_calls=calls)
        answers = [b.answer for b in [*seen, *([task] if task else [])] if b.answer]
        return AIMessage(content="\n".join(answers) or DONE)


def _until_impossible(calls: list[Call], known: set[str]) -> list[Call]:
    """The calls up to the first one whose data it does not hold yet: what comes after may
    need what that call returns (send the code, then delete the email just sent)."""
    for i, c in enumerate(calls):
        if not c.possible(known):
            return calls[:i]
    return calls


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


def _made(messages: list[BaseMessage]) -> list[str]:
    keys = []
    for m in messages:
        if isinstance(m, AIMessage):
            for call in m.tool_calls:
                args = dict(call.get("args") or {})
                if set(args) == {"request"} and isinstance(args["request"], dict):
                    args = args["request"]
                keys.append(call_key(call["name"], args))
    return keys
