"""Runs in: hub, zygote, spoke, vanillagpt.

A JSON value as the text an LLM context or a check reads: a string as it is, anything else
as JSON (non-ASCII kept). Shared by the hub, the spokes and VanillaGPT, so all three show an
app's result the same way.
"""

from __future__ import annotations

import json
from typing import Any


def as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
