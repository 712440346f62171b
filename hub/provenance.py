"""Runs in: hub.

Where in an app's result a value sits: a field of its own, or words inside a longer text.

Pure: no I/O.

Strict mode takes values out of results with a quarantined LLM, which may obey an
instruction in the result and return a value the instruction wrote. For a destination
(where money, mail or a request goes: ``hub.destinations``) the hub checks where the value
came from: a result field that *is* the destination (a transaction's sender, an event's
participant) is what the app returned as a destination; the same text inside a longer field
(a subject, a message body, a review) is where injected instructions live. Both are the
user's declared flow (expected); the question about the second says so, for the user to check.
(Refusing the second outright was measured: it stopped AgentDojo banking's one remaining
cross-app attack and a third of the slack suite's benign tasks, whose links and addresses
are in messages and web pages.)

The result is read as structured data when it is: a JSON value, or a JSON or YAML text (the
YAML read with the safe loader, aliases refused, so a small text cannot expand into a large
one). Anything else is one field, the whole text. An injection written to *look* like a field
("recipient: X" on a line of its own inside a subject) is still inside the subject once the
text is parsed; it fools only a line-based reading, which this module does not do.

What it cannot tell: an attacker who controls a whole field (their own transaction's sender,
their own e-mail address as a sender) is a field of its own; that is what the data says, and
the flow the user asked for ("refund my friend") goes there.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import yaml

from hub.destinations import find, in_value

MAX_PARSED_CHARS = 20_000  # a result longer than this is read as one text (the extractor reads as much)


class _NoAliases(yaml.SafeLoader):
    """The safe loader without anchors and aliases (no expansion of a small text into a large one)."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            raise yaml.YAMLError("aliases are not read")
        return super().compose_node(parent, index)


def structured(result: object) -> object:
    """``result`` as data: itself if it is not text; a text that is JSON or YAML, parsed; else the text."""
    if not isinstance(result, str) or len(result) > MAX_PARSED_CHARS:
        return result
    try:
        return json.loads(result)
    except ValueError:
        pass
    try:
        parsed = yaml.load(result, Loader=_NoAliases)  # noqa: S506 - a safe loader, aliases refused
    except (yaml.YAMLError, ValueError, RecursionError):
        return result
    return parsed if isinstance(parsed, (dict, list)) else result


def fields(value: object) -> Iterator[str]:
    """Every scalar in ``value`` (keys excluded), as text."""
    if isinstance(value, dict):
        for v in value.values():
            yield from fields(v)
    elif isinstance(value, list):
        for v in value:
            yield from fields(v)
    elif value is not None and not isinstance(value, bool):
        yield str(value)


def whole_destinations(result: object) -> frozenset[str]:
    """The destinations (normalised keys) that are a whole field of ``result``."""
    keys = set()
    for text in fields(structured(result)):
        found = find(text)
        if len(found) == 1 and found[0].text.strip() == text.strip().rstrip(".,;:!?)]}"):
            keys.add(found[0].key)
    return frozenset(keys)


def embedded(value: object, *results: object) -> list[str]:
    """The destinations in ``value`` that none of ``results`` holds as a field of its own (as written)."""
    named = in_value(value)
    if not named:
        return []  # nothing to look for: no result is parsed
    whole = frozenset().union(*(whole_destinations(r) for r in results))
    return list(dict.fromkeys(d.text for d in named if d.key not in whole))
