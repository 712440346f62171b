"""The hub never follows a link in a directory an app can write (helpers/sandbox/app_dirs.py).

Each attack comes with its control: the pre-fix code (a plain open/chown/chmod by
path, kept here verbatim) run on the same planted link does overwrite or give away
the file outside, so the refusal is what protects it.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from helpers.configs import paths
from helpers.sandbox import app_dirs
from helpers.sandbox.app_dirs import UnsafeAppPath
from helpers.sandbox.app_spec import AppSpec
from helpers.sandbox.sandbox import SANDBOX_APP
from helpers.tools.google.authorize import store_token
from tests.sandbox_helpers import is_root, sandbox_code

SPOKE_ID = (54321, 54321)  # an identity the hub hands a directory to (chown needs root)


def naive_store(folder: Path, name: str, text: str, identity) -> None:
    """The token storage before the fix: resolves the path, follows links, chowns by path."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(folder / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    if identity:
        os.chown(folder, *identity)
        os.chown(folder / name, *identity)


def naive_prepare(folder: Path, identity) -> None:
    """The data directory preparation before the fix."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    if identity:
        os.chown(folder, *identity)
    os.chmod(folder, 0o700)


@pytest.fixture
def world(tmp_path):
    """A data directory with one app's directory, and a root-owned file and directory outside."""
    root = tmp_path / "data"
    app_dir = root / "apps" / "thief"
    app_dir.mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir(mode=0o700)
    target = outside / "shadow"
    target.write_text("root's secret")
    target.chmod(0o600)
    return root, app_dir, outside, target


def _identity():
    return SPOKE_ID if is_root() else None


def test_planted_file_link_followed_by_naive_write_refused_by_app_dirs(world):
    root, app_dir, _, target = world
    (app_dir / "token.json").symlink_to(target)
    before = target.stat()
    # the control: the old code writes through the link, as root, and gives the file away
    naive_store(app_dir, "token.json", "attacker-chosen", _identity())
    assert target.read_text() == "attacker-chosen"
    if is_root():
        assert target.stat().st_uid == SPOKE_ID[0] != before.st_uid
        os.chown(target, before.st_uid, before.st_gid)
    target.write_text("root's secret")
    # the attack against app_dirs: refused, the target untouched, the link left as it was
    with pytest.raises(UnsafeAppPath, match="symbolic link.*remove it"):
        app_dirs.write_file(app_dir, "token.json", b"{}", owner=_identity(), root=root)
    after = target.stat()
    assert target.read_text() == "root's secret" and (after.st_uid, after.st_mode) == (before.st_uid, before.st_mode)
    assert (app_dir / "token.json").is_symlink()
    assert [p.name for p in app_dir.iterdir()] == ["token.json"]  # no temporary file left behind


def test_planted_directory_link_followed_by_naive_prepare_refused_by_app_dirs(world):
    root, app_dir, outside, _ = world
    linked = root / "apps" / "linked"
    linked.symlink_to(outside, target_is_directory=True)
    outside.chmod(0o755)
    naive_prepare(linked, _identity())  # the control: chmod (and chown) land on the outside directory
    assert stat.S_IMODE(outside.stat().st_mode) == 0o700
    if is_root():
        assert outside.stat().st_uid == SPOKE_ID[0]
        os.chown(outside, 0, 0)
    outside.chmod(0o755)
    for directory in (linked, linked / "deeper"):
        with pytest.raises(UnsafeAppPath, match="symbolic link where the hub expects a directory"):
            app_dirs.prepare_app_dir(directory, _identity(), root=root)
    assert stat.S_IMODE(outside.stat().st_mode) == 0o755 and outside.stat().st_uid == os.getuid()
    assert not (outside / "deeper").exists()


def test_a_link_planted_after_the_check_is_replaced_not_followed(world, monkeypatch):
    """The check only gives a clear message: the rename into place is what keeps the hub off
    the target, even when the link appears between check and write."""
    root, app_dir, _, target = world
    (app_dir / "token.json").symlink_to(target)
    monkeypatch.setattr(app_dirs, "_refuse_unless_file", lambda *a, **k: None)
    app_dirs.write_file(app_dir, "token.json", b"{}", owner=_identity(), root=root)
    assert target.read_text() == "root's secret"
    assert not (app_dir / "token.json").is_symlink() and (app_dir / "token.json").read_bytes() == b"{}"


def test_write_file_replaces_a_file_with_owner_and_mode_set(world):
    root, app_dir, _, _ = world
    (app_dir / "token.json").write_text("old")
    path = app_dirs.write_file(app_dir, "token.json", b"new", mode=0o600, owner=_identity(), root=root)
    st = path.stat()
    assert path.read_bytes() == b"new" and stat.S_IMODE(st.st_mode) == 0o600
    assert st.st_uid == (SPOKE_ID[0] if is_root() else os.getuid())


def test_prepare_creates_the_app_directory(world):
    root, _, _, _ = world
    fresh = root / "apps" / "newcomer"
    app_dirs.prepare_app_dir(fresh, _identity(), root=root)
    assert fresh.is_dir() and stat.S_IMODE(fresh.stat().st_mode) == 0o700
    assert fresh.stat().st_uid == (SPOKE_ID[0] if is_root() else os.getuid())


@pytest.mark.parametrize("bad", ["../escape", "a/../../b"])
def test_paths_outside_the_root_refused(world, bad):
    root, _, _, _ = world
    with pytest.raises(app_dirs.SandboxError):
        app_dirs.open_dir(root / "apps" / bad, root)
    with pytest.raises(app_dirs.SandboxError, match="not under"):
        app_dirs.open_dir(root.parent / "elsewhere", root)


def test_read_file_refuses_links_and_special_files(world):
    root, app_dir, _, target = world
    (app_dir / "notes.txt").write_text("mine")
    assert app_dirs.read_file(app_dir, "notes.txt", root=root) == b"mine"
    (app_dir / "link.txt").symlink_to(target)
    assert target.read_text() == "root's secret"  # the control: following the link would read it
    with pytest.raises(UnsafeAppPath, match="symbolic link"):
        app_dirs.read_file(app_dir, "link.txt", root=root)
    os.mkfifo(app_dir / "pipe")  # a FIFO would hang a plain read
    with pytest.raises(UnsafeAppPath, match="not a regular file"):
        app_dirs.read_file(app_dir, "pipe", root=root)


# --- the attack from a real spoke ------------------------------------------------------------------------

def test_spoke_planted_token_link_refused_by_authorize(hub, data_dir, tmp_path):
    """A spoke makes its token.json a link to a root-owned file outside; storing its token
    refuses. The control: the pre-fix code, on the very link the spoke planted, overwrites
    the file (and, as root, hands it to the spoke's uid)."""
    outside = tmp_path / "root_only"
    outside.mkdir(mode=0o700)
    target = outside / "shadow"
    target.write_text("root's secret")
    target.chmod(0o600)
    before = target.stat()
    planted = sandbox_code(hub, f"import os; os.symlink({str(target)!r}, 'token.json'); print('planted')",
                           name="token_thief")
    assert planted.response["stdout"] == "planted\n"
    app_dir = paths.app_data_dir("token_thief")
    assert os.readlink(app_dir / "token.json") == str(target)
    with pytest.raises(UnsafeAppPath, match="token.json is a symbolic link"):
        store_token("token_thief", json.dumps({"token": "t"}))
    assert target.read_text() == "root's secret" and target.stat().st_uid == before.st_uid
    identity = hub.launcher.identity("token_thief")
    naive_store(app_dir, "token.json", "overwritten", identity)
    assert target.read_text() == "overwritten"
    if identity:
        assert target.stat().st_uid == identity[0] != before.st_uid


def test_launcher_refuses_an_app_directory_that_is_a_link(hub, data_dir, tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir(mode=0o755)
    (data_dir / "apps").mkdir(exist_ok=True)
    (data_dir / "apps" / "linked_app").symlink_to(outside, target_is_directory=True)
    with pytest.raises(UnsafeAppPath, match="linked_app is a symbolic link"):
        hub.start(AppSpec(name="linked_app", module=SANDBOX_APP.module))
    assert stat.S_IMODE(outside.stat().st_mode) == 0o755 and outside.stat().st_uid == os.getuid()


@pytest.mark.skipif(not is_root(), reason="changing owners needs root")
def test_reowning_an_older_directory_never_follows_a_link(world):
    """A directory written by another uid (an older version's shared spoke user) is handed over
    whole to the app's own uid; a link inside is re-owned itself, never its target."""
    root, app_dir, outside, target = world
    old = (65534, 65534)
    (app_dir / "sub").mkdir()
    (app_dir / "sub" / "notes.txt").write_text("mine")
    (app_dir / "escape").symlink_to(target)
    (app_dir / "escape_dir").symlink_to(outside)
    for path in (app_dir, app_dir / "sub", app_dir / "sub" / "notes.txt"):
        os.chown(path, *old)
    app_dirs.prepare_app_dir(app_dir, SPOKE_ID, root=root)
    for path in (app_dir, app_dir / "sub", app_dir / "sub" / "notes.txt"):
        assert (path.stat().st_uid, path.stat().st_gid) == SPOKE_ID
    assert os.lstat(app_dir / "escape").st_uid == SPOKE_ID[0]
    assert target.stat().st_uid == 0 and outside.stat().st_uid == 0  # never followed
