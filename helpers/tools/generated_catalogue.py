"""Runs in: hub.

A catalogue of many generated apps, written as a user would install them: how the catalogue,
retrieval and the planner's prompt scale with hundreds of installed apps is measured on it
(``evaluation/benchmarks/planning.py``) and tested on it (``tests/test_user_apps.py``). Each
app is a thin copy of metro_hail under another name and topic; nothing is installed outside
the directory given.
"""

from __future__ import annotations

import json
from pathlib import Path

TOPICS = ("weather", "recipes", "flights", "stocks", "music", "fitness", "news", "translation", "calendar",
          "parking", "pets", "gardening", "tax", "movies", "books", "trains", "hotels", "crypto", "podcasts")


def write_generated_catalogue(root: Path, count: int) -> Path:
    """``count`` apps (``app_0000`` ...), one functionality each on one of ``TOPICS`` in turn,
    written in ``root`` (manifests/, specifications/), with metro_hail in place of the last one;
    returns the functionalities file that installs them."""
    (root / "manifests").mkdir()
    (root / "specifications").mkdir()
    names = [f"app_{i:04d}" for i in range(count)]
    for i, name in enumerate(names):
        topic = TOPICS[i % len(TOPICS)]
        (root / "manifests" / f"{name}.json").write_text(json.dumps({
            "name": name, "description": f"App {i} about {topic}.", "module": "helpers.tools.apps.metro_hail",
            "functionalities": {name: f"Answer questions about {topic} (variant {i})."}}))
        (root / "specifications" / f"{name}.json").write_text(json.dumps({"properties": {name: {"properties": {
            "request": {"type": "object"}, "response": {"type": "string"}}}}}))
    listing = root / "functionalities.json"
    listing.write_text(json.dumps({"installed_functionalities": [*names[:-1], "metro_hail"]}))
    return listing
