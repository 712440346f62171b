"""Runs in: hub, vanillagpt.

data/perm.json: the user's grants, in the original format, written safely.

    {user_id: {key: {"exec" | "data" | "collab": "one_time" | "session" | "permanent"}}}

A key is an app (``gmail``) or a pair (``A->B``: A using B), as in the original, and
a grant written now is bound to one functionality: ``gmail:search_gmail`` (the app
running a planned step), ``A->B:send_gmail_message`` (A using that functionality of
B), ``gmail:send_gmail_message`` for the coordinator of a multi-app plan. A
whole-app key written earlier is still read, for what it granted: any functionality
of that app (``consume`` looks for the bound key first, then the whole-app key).
Data grants stay whole-app: they are about the user's details, not a functionality.

Every change is a read-modify-write under an exclusive lock (flock on a side
file), and lands by writing a temporary file in the same directory, fsyncing it,
and renaming it over perm.json: a reader sees the old file or the new one, never
half of one; a writer killed at any point leaves a valid file; two hubs never
lose each other's grants. A file that is not valid is never overwritten: the
error says how to fix it.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from pydantic import RootModel, ValidationError, field_validator

from helpers.utilities.errors import PermissionStoreError

Category = Literal["exec", "data", "collab"]
Scope = Literal["one_time", "session", "permanent"]
CATEGORIES: tuple[Category, ...] = ("exec", "data", "collab")
SCOPES: tuple[Scope, ...] = ("one_time", "session", "permanent")


# {user: {key: {category: scope}}}
Grants = dict[str, dict[str, dict[Category, Scope]]]


class _Grants(RootModel[Grants]):
    @field_validator("root")
    @classmethod
    def _keys(cls, value: Grants) -> Grants:
        for user, apps in value.items():
            for key in apps:
                whole, _, functionality = key.partition(":")
                parts = whole.split("->")
                if (len(parts) > 2 or not all(_name(p) for p in parts)
                        or (":" in key and not _name(functionality))):
                    raise ValueError(f"user {user!r}: {key!r} is none of APP, A->B, APP:FUNCTIONALITY, "
                                     "A->B:FUNCTIONALITY")
        return value


def _name(part: str) -> bool:
    return bool(part) and part.replace("_", "").isalnum()


def pair_key(caller: str, callee: str) -> str:
    return f"{caller}->{callee}"


def bound_key(key: str, functionality: str | None) -> str:
    """The key of a grant bound to one functionality (``A->B:f``); ``key`` itself for none."""
    return f"{key}:{functionality}" if functionality else key


def _candidates(key: str, functionality: str | None) -> tuple[str, ...]:
    """Where a grant for ``functionality`` under ``key`` may be: bound to it, or (written before
    grants were bound) to the whole app or pair."""
    return (bound_key(key, functionality), key) if functionality else (key,)


class PermissionStore:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.lock_path = self.path.with_name(self.path.name + ".lock")

    # --- reading ---------------------------------------------------------------------------------
    def load(self) -> Grants:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise PermissionStoreError(f"cannot read {self.path}: {exc.strerror}; check its permissions") from exc
        try:
            return _Grants.model_validate_json(raw).root
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            where = "/".join(str(p) for p in first["loc"][1:]) or "top level"
            raise PermissionStoreError(
                f"{self.path} is not a valid permission file ({where}: {first['msg']}); fix it by hand, "
                f"or move it aside (mv {self.path} {self.path}.bad) to start with no grants") from exc

    def scope(self, user: str, key: str, category: Category) -> Scope | None:
        return self.load().get(user, {}).get(key, {}).get(category)

    # --- changing ----------------------------------------------------------------------------------
    def grant(self, user: str, key: str, category: Category, scope: Scope,
              functionalities: Sequence[str] = ()) -> None:
        """Grant ``category`` under ``key``, bound to each of ``functionalities`` (the whole key
        when there are none: data grants, and the original format)."""
        _check(category, scope)

        def change(grants: Grants) -> None:
            for k in [bound_key(key, f) for f in functionalities] or [key]:
                grants.setdefault(user, {}).setdefault(k, {})[category] = scope

        self._update(change)

    def revoke(self, user: str, key: str, category: Category | None = None) -> bool:
        """Revoke ``key``'s grants; an app or pair key takes its functionality-bound grants with it."""
        found: list[Category] = []

        def change(grants: Grants) -> None:
            entries = grants.get(user, {})
            for k in [k for k in entries if k == key or (":" not in key and k.startswith(key + ":"))]:
                entry = entries[k]
                for cat in ([category] if category else list(entry)):
                    if entry.pop(cat, None) is not None:
                        found.append(cat)
                if not entry:
                    del entries[k]

        self._update(change)
        return bool(found)

    def consume(self, user: str, key: str, category: Category,
                functionalities: Sequence[str] = ()) -> Scope | None:
        """The standing grant covering this operation, if any: one for each of ``functionalities``
        (bound to it, or to the whole key), or for ``key`` itself when there are none. The
        narrowest scope found is returned; one-time grants are used up."""
        def find(grants: Grants) -> list[str] | None:
            entries = grants.get(user, {})
            keys: list[str] = []
            for f in functionalities or (None,):
                found = next((k for k in _candidates(key, f) if category in entries.get(k, {})), None)
                if found is None:
                    return None
                keys.append(found)
            return list(dict.fromkeys(keys))

        used: list[Scope] = []

        def change(grants: Grants) -> None:
            keys = find(grants)
            if keys is None:
                return
            entries = grants[user]
            used.append(min((entries[k][category] for k in keys), key=SCOPES.index))
            for k in keys:
                if entries[k][category] == "one_time":
                    del entries[k][category]
                    if not entries[k]:
                        del entries[k]

        if find(self.load()) is None:
            return None  # the common case: no write, no lock
        self._update(change)
        return used[0] if used else None

    def start_session(self, user: str) -> None:
        """Session grants last one session: clear this user's at the start of a new one."""
        def change(grants: Grants) -> None:
            for key, entry in list(grants.get(user, {}).items()):
                for cat in [c for c, s in entry.items() if s == "session"]:
                    del entry[cat]
                if not entry:
                    del grants[user][key]
            grants.setdefault(user, {})

        self._update(change)

    # --- the one place that writes ------------------------------------------------------------
    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def _update(self, change: Callable[[Grants], None]) -> None:
        with self._locked():
            grants = self.load()
            change(grants)
            self._write(grants)

    def _write(self, grants: Grants) -> None:
        data = json.dumps(grants, indent=2, sort_keys=True).encode() + b"\n"
        fd, tmp = tempfile.mkstemp(prefix=".perm.", suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
        dir_fd = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _check(category: str, scope: str) -> None:
    if category not in CATEGORIES or scope not in SCOPES:
        raise ValueError(f"unknown permission {category!r}/{scope!r}")
