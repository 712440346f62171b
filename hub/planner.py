"""Runs in: hub.

The planner: which functionalities does this query need, in which order?

Asks the LLM for ``{"steps": [{"name", "input", "output"}]}``; a step's input may
reference ``<result_k>``. A malformed plan is asked for once more; after that the
query is answered without apps, and the user is told.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, ValidationError

from helpers.isc.messages import ChatMessage, PlanStep
from helpers.llm.client import LLMClient
from helpers.memory.extraction import parse_json_object
from helpers.templates import prompts
from helpers.tools.tool_importer import Functionality

# An input name as the strict planner shows it: short and plain, or "?" (a name is vendor text too).
_INPUT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,39}")
_MAX_INPUTS = 12


class Plan(BaseModel):
    model_config = ConfigDict(extra="ignore")
    steps: list[PlanStep]


@dataclass
class PlanResult:
    steps: list[PlanStep]
    note: str | None = None  # told to the user when planning failed


class Planner:
    """``signatures_only`` (strict mode): the planner sees each functionality's name, inputs and
    app, never the text its vendor wrote (a description cannot steer which *other* apps are
    planned, or what their steps receive)."""

    def __init__(self, llm: LLMClient, signatures_only: bool = False) -> None:
        self.llm = llm
        self.signatures_only = signatures_only

    def listing(self, functionalities: list[Functionality]) -> str:
        if self.signatures_only:
            lines = [f"- {f.name}({', '.join(_inputs(f))}) (app {f.app})" for f in functionalities]
            return "\n".join([prompts.PLANNER_SIGNATURES, *lines]) if lines else "(none)"
        return "\n".join(f"- {f.name} (app {f.app}): {f.description}" for f in functionalities) or "(none)"

    def plan(self, query: str, candidates: list[Functionality], history: list[ChatMessage] | None = None,
             avoid: set[str] | None = None) -> PlanResult:
        usable = [f for f in candidates if f.app not in (avoid or set())]
        apps = self.listing(usable)
        messages = [ChatMessage(role="system", content=prompts.PLANNER.format(apps=apps)),
                    *(history or []), ChatMessage(role="user", content=query)]
        error = ""
        for _ in range(2):
            reply = self.llm.complete(messages, purpose="planner")
            plan, error = parse_plan(reply.content)
            if plan is not None:
                return PlanResult(plan.steps)
            messages += [ChatMessage(role="assistant", content=reply.content),
                         ChatMessage(role="user", content=prompts.PLANNER_RETRY.format(error=error))]
        return PlanResult([], note=f"I could not make a plan for this request ({error}), so I answered "
                                   "without using any app.")


def parse_plan(text: str) -> tuple[Plan | None, str]:
    found = parse_json_object(text.strip().removeprefix("```json").removesuffix("```"))
    if found is None:
        return None, "no JSON object in the reply"
    try:
        return Plan.model_validate(found), ""
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        return None, f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"


def _inputs(f: Functionality) -> list[str]:
    """A functionality's input names, as its request schema has them (names only: a property's
    description is vendor text)."""
    properties = f.request_schema.get("properties") if isinstance(f.request_schema, dict) else None
    if not isinstance(properties, dict):
        return []
    return [k if _INPUT_NAME.fullmatch(k) else "?" for k in map(str, properties)][:_MAX_INPUTS]
