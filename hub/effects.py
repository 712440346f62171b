"""Which functionalities have side effects: those the hub asks about at each call, with its input.

Runs in: hub.

A functionality has side effects (it sends, deletes, books, writes, posts, or reaches
a network) unless its specification file says so at its top level::

    {"$schema": "...", "side_effects": false, "properties": {"search_gmail": {...}}}

The default is *true*: an app whose author said nothing, every AgentDojo tool, a
wrapped LangChain tool, is asked about call by call. Read-only are, in this
repository: ``search_gmail``, ``get_gmail_message``, ``get_gmail_thread``,
``google_drive_retrieve``, the fare estimates (``metro_hail``, ``quick_ride``), the
pure example tools (``convert_units``, ``count_words``, ``days_between``), and
annotation apps (no code: an LLM answers in their own spoke). Sending, drafting
and deleting mail, booking, notes and every ``requests_*`` call keep the default.

What the flag changes: an approval of a read-only functionality may cover its
planned calls for the rest of the query (asked once, at the probe); one with
side effects is asked at each call, with the call's input, whatever was approved
at the probe. It never makes a call expected that the plan did not expect.
"""

from __future__ import annotations

import json
from pathlib import Path

from helpers.tools.tool_importer import TOOLS_DIR, ToolImporter
from helpers.utilities.errors import ConfigError

FLAG = "side_effects"


class SideEffects:
    """``SideEffects(importer)(name)``: does this installed functionality have side effects?"""

    def __init__(self, importer: ToolImporter) -> None:
        self.importer = importer
        self._known: dict[str, bool] = {}

    def __call__(self, name: str) -> bool:
        if name not in self._known:
            self._known[name] = self._read(name)
        return self._known[name]

    def _read(self, name: str) -> bool:
        app = self.importer.apps.get(self.importer.owner.get(name, ""))
        if app is None:
            return True
        if app.manifest.annotation and not app.manifest.module:
            return False  # no code: its own spoke's LLM answers, and its calls are checked as any other
        path = self._specification(name)
        try:
            value = json.loads(path.read_text()).get(FLAG, True)
        except (OSError, ValueError, AttributeError):
            return True  # the importer already refused a specification it could not read
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: {FLAG} must be true or false, not {value!r}")
        return value

    def _specification(self, name: str) -> Path:
        # The same search order as the importer's: the extra app folders first, then helpers/tools.
        for base in (*self.importer.extra_dirs, TOOLS_DIR):
            if (base / "specifications" / f"{name}.json").exists():
                return base / "specifications" / f"{name}.json"
        return TOOLS_DIR / "specifications" / f"{name}.json"
