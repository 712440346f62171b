"""Runs in: hub.

The quarantined LLM (strict mode): one value taken out of an earlier step's result.

Makes one LLM call per value, with no tools, holding only the result it reads, the value's JSON
Schema and where the plan puts it (the user's request and the plan made from it: trusted text, which
tells it which value of the result is wanted); its reply is parsed as JSON and validated against the
schema, or the value is not used. Whatever the result says, the worst this call can do is return
another value of that schema, which the hub records as coming from the result's app (the user is
shown it, with its source, when asked about the call).

Must never: bind tools, see another app's output or the chat history, or pass on a reply
that fails the schema.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import jsonschema

from helpers.isc.messages import ChatMessage, PlanStep
from helpers.llm.client import LLMClient
from helpers.memory.extraction import parse_json_object
from helpers.templates import prompts
from hub.plan import listing

MAX_RESULT_CHARS = 20_000  # of the result the quarantined LLM reads


@dataclass(frozen=True)
class Extracted:
    value: object = None
    error: str = ""  # why there is no value

    @property
    def ok(self) -> bool:
        return not self.error


def extract(llm: LLMClient, result: str, *, k: int, template: str, field: str, functionality: str,
            schema: dict, request: str, plan: Sequence[PlanStep], step: int) -> Extracted:
    """The value of input ``field`` of step ``step`` (1-based) of ``plan``, made for the user's
    ``request``, out of ``result`` (step ``k``'s)."""
    system = prompts.EXTRACT.format(schema=json.dumps(schema or {}), template=json.dumps(template), k=k,
                                    field=field, functionality=functionality,
                                    request=json.dumps(request, ensure_ascii=False), plan=listing(plan), step=step)
    reply = llm.complete([ChatMessage(role="system", content=system),
                          ChatMessage(role="user", content=result[:MAX_RESULT_CHARS])],
                         purpose="extract")
    text = reply.content.strip().removeprefix("```json").removesuffix("```").strip()
    value = _parse(text)
    if value is None:
        return Extracted(error=f"no value for {field} in the result of step {k}")
    try:
        jsonschema.validate(value, schema or {})
    except jsonschema.ValidationError as exc:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            try:  # a number where text is wanted: the same value
                jsonschema.validate(str(value), schema or {})
                return Extracted(str(value))
            except jsonschema.ValidationError:
                pass
        return Extracted(error=f"the value for {field} does not match its schema: {exc.message}")
    return Extracted(value)


def _parse(text: str):
    """The reply as a JSON value; a bare word or phrase (not JSON) is taken as text."""
    if not text:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        found = parse_json_object(text) if "{" in text else None
        return found if found is not None else text
