"""perm.json: the original semantics, grants bound to functionalities (old whole-app grants
still read), and a file that stays valid and complete under killed and concurrent writers."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import time

import pytest

from helpers.permission.store import PermissionStore
from helpers.utilities.errors import PermissionStoreError


@pytest.fixture
def store(tmp_path) -> PermissionStore:
    return PermissionStore(tmp_path / "perm.json")


def test_original_format(store):
    store.grant("0", "quick_ride", "exec", "permanent")
    store.grant("0", "quick_ride->metro_hail", "collab", "session")
    assert json.loads(store.path.read_text()) == {
        "0": {"quick_ride": {"exec": "permanent"}, "quick_ride->metro_hail": {"collab": "session"}}}
    assert oct(store.path.stat().st_mode & 0o777) == "0o600"


def test_grants_bound_to_functionalities(store):
    store.grant("0", "gmail", "exec", "permanent", ["search_gmail", "get_gmail_message"])
    store.grant("0", "metro_hail->gmail", "collab", "session", ["search_gmail"])
    assert json.loads(store.path.read_text()) == {"0": {
        "gmail:search_gmail": {"exec": "permanent"}, "gmail:get_gmail_message": {"exec": "permanent"},
        "metro_hail->gmail:search_gmail": {"collab": "session"}}}
    assert store.consume("0", "gmail", "exec", ["search_gmail"]) == "permanent"
    assert store.consume("0", "gmail", "exec", ["send_gmail_message"]) is None
    assert store.consume("0", "gmail", "exec", ["search_gmail", "send_gmail_message"]) is None  # every one needed
    assert store.consume("0", "gmail", "exec") is None  # a bound grant is not a whole-app grant
    assert store.consume("0", "metro_hail->gmail", "collab", ["search_gmail"]) == "session"


def test_whole_app_grants_written_before_stay_valid(store):
    store.grant("0", "gmail", "exec", "permanent")
    store.grant("0", "quick_ride->metro_hail", "exec", "session")
    assert store.consume("0", "gmail", "exec", ["send_gmail_message"]) == "permanent"
    assert store.consume("0", "quick_ride->metro_hail", "exec", ["metro_hail"]) == "session"
    assert store.consume("0", "metro_hail", "exec", ["metro_hail"]) is None


def test_narrowest_scope_and_one_time_used_up_per_functionality(store):
    store.grant("0", "gmail", "exec", "permanent", ["search_gmail"])
    store.grant("0", "gmail", "exec", "one_time", ["get_gmail_message"])
    assert store.consume("0", "gmail", "exec", ["search_gmail", "get_gmail_message"]) == "one_time"
    assert store.load()["0"] == {"gmail:search_gmail": {"exec": "permanent"}}


def test_revoking_an_app_takes_its_bound_grants(store):
    store.grant("0", "gmail", "exec", "permanent", ["search_gmail"])
    store.grant("0", "gmail", "data", "permanent")
    store.grant("0", "gmail_extra", "exec", "permanent")
    assert store.revoke("0", "gmail", "exec")
    assert store.load()["0"] == {"gmail": {"data": "permanent"}, "gmail_extra": {"exec": "permanent"}}
    store.grant("0", "gmail", "exec", "permanent", ["search_gmail", "send_gmail_message"])
    assert store.revoke("0", "gmail:send_gmail_message")
    assert set(store.load()["0"]) == {"gmail", "gmail_extra", "gmail:search_gmail"}


def test_one_time_is_used_up(store):
    store.grant("0", "metro_hail", "exec", "one_time")
    assert store.consume("0", "metro_hail", "exec") == "one_time"
    assert store.consume("0", "metro_hail", "exec") is None


def test_session_cleared_at_session_start_permanent_stays(store):
    store.grant("0", "a", "exec", "session")
    store.grant("0", "a", "data", "permanent")
    store.grant("1", "a", "exec", "session")
    store.start_session("0")
    assert store.scope("0", "a", "exec") is None
    assert store.scope("0", "a", "data") == "permanent"
    assert store.scope("1", "a", "exec") == "session"  # other users untouched


def test_revoke(store):
    store.grant("0", "a", "exec", "permanent")
    store.grant("0", "a", "data", "permanent")
    assert store.revoke("0", "a", "exec")
    assert store.scope("0", "a", "data") == "permanent"
    assert store.revoke("0", "a")
    assert not store.revoke("0", "a")
    assert store.load() == {"0": {}}


@pytest.mark.parametrize("content,where", [
    (b"{not json", "perm.json"),
    (b'{"0": {"a": {"exec": "forever"}}}', "0/a/exec"),
    (b'{"0": {"a": {"fly": "permanent"}}}', "0/a"),
    (b'{"0": {"../x": {"exec": "permanent"}}}', "0"),
    (b'{"0": {"a:": {"exec": "permanent"}}}', "0"),
    (b'{"0": {"a->b:c:d": {"exec": "permanent"}}}', "0"),
    (b'{"0": {"a->b->c:d": {"exec": "permanent"}}}', "0"),
    (b'[]', "top level"),
])
def test_corrupt_file_is_a_clear_error_and_never_overwritten(store, content, where):
    store.path.write_bytes(content)
    with pytest.raises(PermissionStoreError, match="move it aside") as info:
        store.grant("0", "a", "exec", "permanent")
    assert str(store.path) in str(info.value)
    assert store.path.read_bytes() == content


def _writer(path: str, user: str, count: int) -> None:
    store = PermissionStore(path)
    for i in range(count):
        store.grant(user, f"app{i}", "exec", "permanent")


def test_concurrent_writers_lose_nothing(store):
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(str(store.path), str(u), 40)) for u in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    grants = store.load()
    assert all(len(grants[str(u)]) == 40 for u in range(4))


def _endless_writer(path: str) -> None:
    store = PermissionStore(path)
    i = 0
    while True:
        store.grant("0", f"app{i % 500}", "exec", "permanent" if i % 2 else "session")
        i += 1


def test_killed_writers_never_leave_an_invalid_file(store):
    store.grant("0", "keep_me", "data", "permanent")
    ctx = multiprocessing.get_context("fork")
    for round_ in range(15):
        p = ctx.Process(target=_endless_writer, args=(str(store.path),))
        p.start()
        # Wait until it has really written, then kill it wherever it is.
        before = store.path.stat().st_mtime_ns
        deadline = time.monotonic() + 10
        while store.path.stat().st_mtime_ns == before and time.monotonic() < deadline:
            time.sleep(0.001 * (round_ % 3))
        os.kill(p.pid, signal.SIGKILL)
        p.join()
        grants = store.load()  # raises if the file were torn
        assert grants["0"]["keep_me"] == {"data": "permanent"}
