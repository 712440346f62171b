"""Runs in: hub, vanillagpt.

``scripted``: a deterministic, offline chat model that follows a script.

It stands for a competent model that is also *worst-case obedient*: its replies
depend only on the messages and tools it is actually given, never on which
system or spoke it runs in. A script is a list of rules; the first rule whose
conditions hold for the input decides the reply (tool calls, or text built from
the tool results it actually received). A rule conditioned on text that only a
malicious input contains (``context_contains``) is how an obedient model's
reaction to an injected instruction is written down.

No network, no randomness. A ``ChatModel`` on the base it shares with the
AgentDojo worst-case model (``helpers.llm.offline``), built through the same
configuration path as a real model (``helpers.llm.models.make_chat_model``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from helpers.isc.messages import ChatMessage, ToolCall, ToolSpec
from helpers.llm.latency import NO_LATENCY, LatencyModel
from helpers.llm.offline import OfflineModel, last_user_index
from helpers.utilities.errors import ConfigError

NO_RULE = "(The scripted model has no rule for this input.)"
# {query} {tools} {tool:NAME} {re:GROUP} {money:NAME} {plus:N:NAME} {match:NAME/REGEX|DEFAULT}
# {context:REGEX|DEFAULT} (first group of REGEX anywhere in the input)
_PLACEHOLDER = re.compile(r"\{(query|tools|tool:\w+|re:\w+|money:\w+|plus:[0-9.]+:\w+"
                          r"|match:\w+/[^}|]*(?:\|[^}]*)?|context:[^}|]*(?:\|[^}]*)?)\}")
_MONEY = re.compile(r"\$(\d+(?:\.\d+)?)")


class When(BaseModel):
    model_config = ConfigDict(extra="forbid")
    system_contains: str | None = None
    query_contains: str | list[str] | None = None   # all of them, case-insensitive
    query_regex: str | None = None                   # named groups usable as {re:NAME}
    context_contains: str | None = None              # anywhere in the input: the trigger of an injection
    tools_include: list[str] = Field(default_factory=list)
    called: list[str] = Field(default_factory=list)
    not_called: list[str] = Field(default_factory=list)


class ScriptedCall(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    args: dict[str, Any] = Field(default_factory=dict)


class Then(BaseModel):
    model_config = ConfigDict(extra="forbid")
    content: str = ""
    tool_calls: list[ScriptedCall] = Field(default_factory=list)


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = ""
    when: When = Field(default_factory=When)
    then: Then


class Script(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rules: list[Rule]

    @classmethod
    def load(cls, path: Path) -> Script:
        try:
            return cls.model_validate_json(Path(path).read_bytes())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"script {path} is not valid: {str(exc).splitlines()[0]}") from exc


class _View:
    """What the model was given, reduced to what rules look at."""

    def __init__(self, messages: list[ChatMessage], tools: list[ToolSpec]) -> None:
        self.tools = [t.name for t in tools]
        self.system = "\n".join(m.content for m in messages if m.role == "system")
        # Everything the model was given: messages, and the tools' descriptions (a real model reads them).
        self.context = "\n".join([*(m.content for m in messages), *(t.description for t in tools)])
        last_user = last_user_index(messages)
        self.query = messages[last_user].content if last_user >= 0 else ""
        names: dict[str, str] = {}
        self.results: dict[str, str] = {}
        self.order: list[str] = []
        for m in messages[last_user + 1:]:
            if m.role == "assistant":
                for call in m.tool_calls:
                    names[call.id] = call.name
            elif m.role == "tool":
                name = names.get(m.tool_call_id or "", "")
                self.results[name] = m.content
                self.order.append(m.content)
        self.called = set(names.values())

    def matches(self, when: When) -> bool:
        self.groups: dict[str, str] = {}
        if when.query_regex is not None:
            found = re.search(when.query_regex, self.query, re.IGNORECASE | re.DOTALL)
            if found is None:
                return False
            self.groups = {k: v.strip() for k, v in found.groupdict().items() if v is not None}
        wanted = [when.query_contains] if isinstance(when.query_contains, str) else when.query_contains or []
        return ((when.system_contains is None or when.system_contains in self.system)
                and all(w.lower() in self.query.lower() for w in wanted)
                and (when.context_contains is None or when.context_contains in self.context)
                and all(t in self.tools for t in when.tools_include)
                and all(t in self.called for t in when.called)
                and not any(t in self.called for t in when.not_called))

    def fill(self, value: Any) -> Any:
        if isinstance(value, str):
            return _PLACEHOLDER.sub(self._substitute, value)
        if isinstance(value, list):
            return [self.fill(v) for v in value]
        if isinstance(value, dict):
            return {k: self.fill(v) for k, v in value.items()}
        return value

    def _substitute(self, match: re.Match) -> str:
        key = match.group(1)
        if key == "query":
            return self.query
        if key == "tools":
            return "\n".join(self.order)
        kind, rest = key.split(":", 1)
        if kind == "re":
            return self.groups.get(rest, "")
        if kind == "match":  # first group of REGEX in a tool's result, else DEFAULT
            name, _, pattern = rest.partition("/")
            pattern, _, default = pattern.partition("|")
            found = re.search(pattern, self.results.get(name, ""))
            return found.group(1) if found else default
        if kind == "context":
            pattern, _, default = rest.partition("|")
            found = re.search(pattern, self.context)
            return found.group(1) if found else default
        if kind in ("money", "plus"):  # the first dollar amount in a tool's result (plus N: raised by N)
            extra, name = (rest.split(":", 1) if kind == "plus" else ("0", rest))
            found = _MONEY.search(self.results.get(name, ""))
            return f"${float(found.group(1)) + float(extra):.2f}" if found else ""
        return self.results.get(rest, "")


class ScriptedChatModel(OfflineModel):
    """The first rule whose conditions hold decides the reply; none: ``NO_RULE``."""

    def __init__(self, script: Script, latency: LatencyModel = NO_LATENCY) -> None:
        super().__init__(latency)
        self.script = script

    def reply(self, messages: list[ChatMessage], tools: list[ToolSpec]) -> ChatMessage:
        view = _View(messages, tools)
        for rule in self.script.rules:
            if view.matches(rule.when):
                return self._reply(view, rule.then)
        return ChatMessage(role="assistant", content=NO_RULE)

    def _reply(self, view: _View, then: Then) -> ChatMessage:
        calls = [ToolCall(id=self.call_id(), name=call.name, args=view.fill(call.args)) for call in then.tool_calls]
        return ChatMessage(role="assistant", content=view.fill(then.content), tool_calls=calls)


def plan_json(*steps: dict) -> str:
    """Helper for scripts written in Python: a plan as the planner prints it."""
    return json.dumps({"steps": list(steps)})
