"""Runs in: hub (the evaluation's driver, beside the system under test).

Planning with many installed apps: the planner prompt's size and the planning time.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from helpers.isc.messages import ChatMessage
from helpers.tools.retrieval import Retriever
from helpers.tools.tool_importer import ToolImporter
from hub.planner import Planner

TOPICS = ["weather", "recipes", "flights", "stocks", "music", "fitness", "news", "translation", "calendar",
          "parking", "pets", "gardening", "tax", "movies", "books", "trains", "hotels", "crypto", "podcasts"]
QUERY = "What is the metro_hail fare from Main Street to Elm Avenue?"


class _InstantPlanner:
    """An LLM stand-in that records the planner prompt and answers at once."""

    def __init__(self) -> None:
        self.prompt_chars = 0

    def complete(self, messages, tools=(), purpose=""):
        self.prompt_chars = sum(len(m.content) for m in messages)
        return ChatMessage(role="assistant",
                           content='{"steps": [{"name": "metro_hail", "input": {}, "output": "fare"}]}')


def install_dummy_apps(root: Path, count: int) -> Path:
    """``count`` generated apps (plus metro_hail) in ``root``; returns their functionalities file."""
    (root / "manifests").mkdir()
    (root / "specifications").mkdir()
    names = []
    for i in range(count):
        name, topic = f"app_{i:04d}", TOPICS[i % len(TOPICS)]
        names.append(name)
        (root / "manifests" / f"{name}.json").write_text(json.dumps({
            "name": name, "description": f"App {i} about {topic}.", "module": "helpers.tools.apps.metro_hail",
            "functionalities": {name: f"Answer questions about {topic} (variant {i})."}}))
        (root / "specifications" / f"{name}.json").write_text(json.dumps({"properties": {name: {"properties": {
            "request": {"type": "object"}, "response": {"type": "string"}}}}}))
    config = root / "functionalities.json"
    config.write_text(json.dumps({"installed_functionalities": names[:-1] + ["metro_hail"]}))
    return config


def run(counts: tuple[int, ...]) -> dict:
    out = {}
    for count in counts:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            importer = ToolImporter(install_dummy_apps(root, count), extra_dirs=(root,))
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
