"""Runs in: hub.

The hub's audit log: one JSON object per line for every message that crosses the
hub<->spoke boundary, every violation, every spoke start/stop, every egress and
permission decision. Append-only, flushed per line; written only by the hub.

Bounded, since a spoke decides how much it sends: a string longer than BODY_LIMIT
characters is kept as ``{"sha256", "size", "head"}`` (size in UTF-8 bytes), a line
is at most about ENTRY_LIMIT bytes, and the lines naming an app are charged to that
app's audit budget for the query (``hub/budget.py``); once over, its lines are
dropped (counted, and the overrun recorded) except the hub's own life-cycle events.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import BaseModel

BODY_LIMIT = 4 * 1024     # characters of one string kept verbatim
HEAD = 256                # characters of a digested string kept as its head
ENTRY_LIMIT = 64 * 1024   # bytes of one line, beyond which whole fields are digested
# Written even when the app they name is over its audit budget: the hub's own record of what happened.
ALWAYS_KEPT = frozenset({"spoke_started", "spoke_stopped", "budget_exceeded", "budget_spent", "llm_error"})


class AuditLog:
    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.ledger = None  # a hub.budget.BudgetLedger, which attaches itself
        self._lock = threading.Lock()
        self._file = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._file = os.fdopen(fd, "a", encoding="utf-8")

    @classmethod
    def in_dir(cls, directory: Path) -> AuditLog:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d")
        return cls(directory / f"audit-{stamp}.jsonl")

    def record(self, event: str, /, *, charge: bool = True, **fields: Any) -> None:
        """One line. ``charge=False``: the hub's own bookkeeping, not charged to the app it names."""
        if self._file is None:
            return
        entry: dict[str, Any] = {"ts": round(time.time(), 6), "event": event}
        for key, value in fields.items():
            entry[key] = shrink(value.model_dump(mode="json") if isinstance(value, BaseModel) else value)
        line = _bounded_line(entry)
        app = fields.get("app")
        if charge and self.ledger is not None and isinstance(app, str):
            if not self.ledger.charge_audit(app, len(line.encode("utf-8", "surrogatepass")) + 1) \
                    and event not in ALWAYS_KEPT:
                return
        with self._lock:
            if self._file is not None:
                self._file.write(line + "\n")
                self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def digest(text: str) -> dict[str, Any]:
    data = text.encode("utf-8", "surrogatepass")
    return {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data), "head": text[:HEAD]}


def shrink(value: Any) -> Any:
    """``value`` (JSON-like) with every string longer than BODY_LIMIT replaced by its digest."""
    if isinstance(value, str):
        return digest(value) if len(value) > BODY_LIMIT else value
    if isinstance(value, dict):
        return {k: shrink(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [shrink(v) for v in value]
    return value


def _bounded_line(entry: dict[str, Any]) -> str:
    """The entry as one JSON line; if still longer than ENTRY_LIMIT (many strings, each under
    BODY_LIMIT), its largest fields are digested whole until it fits."""
    line = json.dumps(entry, default=str, ensure_ascii=False)
    if len(line) <= ENTRY_LIMIT:
        return line
    sizes = {k: len(json.dumps(v, default=str, ensure_ascii=False)) for k, v in entry.items()
             if k not in ("ts", "event", "app")}
    for key in sorted(sizes, key=sizes.get, reverse=True):
        entry[key] = digest(json.dumps(entry[key], default=str, ensure_ascii=False))
        line = json.dumps(entry, default=str, ensure_ascii=False)
        if len(line) <= ENTRY_LIMIT:
            break
    return line


def read_audit(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
