"""Runs in: hub (the evaluation's driver, beside the system under test).

Planning with many installed apps: the planner prompt's size and the planning time.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from helpers.isc.messages import ChatMessage
from helpers.tools.generated_catalogue import write_generated_catalogue
from helpers.tools.retrieval import Retriever
from helpers.tools.tool_importer import ToolImporter
from hub.planner import Planner

QUERY = "What is the metro_hail fare from Main Street to Elm Avenue?"


class _InstantPlanner:
    """An LLM stand-in that records the planner prompt and answers at once."""

    def __init__(self) -> None:
        self.prompt_chars = 0

    def complete(self, messages, tools=(), purpose=""):
        self.prompt_chars = sum(len(m.content) for m in messages)
        return ChatMessage(role="assistant",
                           content='{"steps": [{"name": "metro_hail", "input": {}, "output": "fare"}]}')



def run(counts: tuple[int, ...]) -> dict:
    out = {}
    for count in counts:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            importer = ToolImporter(write_generated_catalogue(root, count), extra_dirs=(root,))
            retriever = Retriever([importer.functionality(n) for n in importer.all_functionalities()])
            llm = _InstantPlanner()
            started = time.perf_counter()
            plan = Planner(llm).plan(QUERY, retriever.candidates(QUERY))
            elapsed = (time.perf_counter() - started) * 1000
            strict = _InstantPlanner()
            Planner(strict, signatures_only=True).plan(QUERY, retriever.candidates(QUERY))
            out[str(count)] = {"planner_prompt_chars": llm.prompt_chars, "planning_ms": round(elapsed, 2),
                               "strict_planner_prompt_chars": strict.prompt_chars,
                               "planned": [s.name for s in plan.steps]}
    return out
