"""Runs in: hub, vanillagpt (read from manifests by the tool importer).

What one app may cost the hub in one query: LLM calls, prompt bytes, audit-log bytes,
and how long one request to it may take. The manifest's ``budget`` block, as data.

The hub pays for everything a spoke asks for (the LLM with its key, the audit log on
its disk, the user's time), so each app gets a budget per query; a manifest may set
its own, only within the hub-wide maxima below. The accounting is ``hub/budget.py``.

Never raises a maximum.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

KiB = 1024

# Defaults, for an app whose manifest says nothing: an agent run is at most ~10 LLM calls
# (helpers/llm/agent.py MAX_STEPS) of a few to a few hundred KiB each, plus a summary.
DEFAULT_LLM_CALLS = 32
DEFAULT_PROMPT_KIB = 4 * 1024
DEFAULT_AUDIT_KIB = 4 * 1024
# Hub-wide maxima: no manifest can go above them.
MAX_LLM_CALLS = 256
MAX_PROMPT_KIB = 64 * 1024
MAX_AUDIT_KIB = 64 * 1024
# One request to a spoke (a query, a call) may take at most this long, whatever the manifest's
# limits.request_timeout_s says: a spoke must not hold the user's session for an hour.
MAX_REQUEST_TIMEOUT_S = 300.0


class Budget(BaseModel):
    """Per app and per query. Exceeding any of them refuses the request that would, and every
    request the app makes after it in the same query."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    llm_calls: int = Field(default=DEFAULT_LLM_CALLS, ge=0, le=MAX_LLM_CALLS)
    prompt_kib: int = Field(default=DEFAULT_PROMPT_KIB, ge=1, le=MAX_PROMPT_KIB)
    audit_kib: int = Field(default=DEFAULT_AUDIT_KIB, ge=64, le=MAX_AUDIT_KIB)

    @property
    def prompt_bytes(self) -> int:
        return self.prompt_kib * KiB

    @property
    def audit_bytes(self) -> int:
        return self.audit_kib * KiB
