"""Runs in: hub.

Which functionalities have side effects: those the hub asks about at each call, with its input.

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

from helpers.tools.tool_importer import ToolImporter


class SideEffects:
    """``SideEffects(importer)(name)``: does this installed functionality have side effects?
    (Read, and checked, by the importer with the specification; unknown names: yes.)"""

    def __init__(self, importer: ToolImporter) -> None:
        self.importer = importer

    def __call__(self, name: str) -> bool:
        app = self.importer.apps.get(self.importer.owner.get(name, ""))
        return app.functionalities[name].side_effects if app is not None else True
