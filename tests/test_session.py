"""SecGPT's hub and VanillaGPT are one ``Session`` (helpers/utilities/session.py): both declare
every member of the interface with the same parameters, and a caller that holds either one and
uses nothing but the interface gets a typed answer, LLM counts, the permission decisions and
the spokes' LLM contexts, each system with its own values."""

from __future__ import annotations

import inspect
import json
from contextlib import closing

import pytest

from helpers.llm.config import LLMConfig
from helpers.utilities.session import Answer, PermissionRecord, Session, SessionInfo, SessionStats
from tests.flow_helpers import METRO, Q_NOAPP, Q_ONE, SCRIPT, Console, importer

LLM = LLMConfig(provider="scripted", model="scripted", script=SCRIPT)
# The interface's members, read off the Protocol itself so that a member added there is checked here.
MEMBERS = sorted(name for name in vars(Session) if not name.startswith("_") or name in ("__enter__", "__exit__"))


def _make(system: str, launcher, consent: str = "expected", console: Console | None = None) -> Session:
    if system == "SecGPT":
        from hub.hub import Hub
        console = console or Console()
        return Hub(LLM, consent=consent, importer=importer(), launcher=launcher, read=console.read,
                   write=console.write)
    from vanillagpt.vanillagpt import VanillaGPT
    return VanillaGPT(LLM, importer=importer())


def _classes():
    from hub.hub import Hub
    from vanillagpt.vanillagpt import VanillaGPT
    return Hub, VanillaGPT


def _parameters(function) -> list[tuple[str, object, object]]:
    """What a caller relies on: each parameter's name, kind and default (annotations are
    checked by the type checker, not here)."""
    return [(p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()]


def test_the_interface_is_what_the_callers_use():
    """Control for the two tests below: the members read off the Protocol are the expected ones."""
    assert MEMBERS == sorted(["__enter__", "__exit__", "answer", "cancel", "close", "grants", "info",
                              "llm_contexts", "permission_log", "revoke", "start", "stats"])
    assert "importer" in Session.__annotations__  # the catalogue the chat's /apps lists


@pytest.mark.parametrize("name", MEMBERS)
def test_both_systems_declare_each_member_as_the_interface_does(name):
    declared = vars(Session)[name]
    for cls in _classes():
        member = getattr(cls, name, None)
        assert member is not None, f"{cls.__name__} lacks {name}"
        if isinstance(declared, property):
            assert isinstance(member, property), f"{cls.__name__}.{name} must be a property"
        else:
            assert _parameters(member) == _parameters(declared), f"{cls.__name__}.{name}"


@pytest.mark.parametrize("system", ["SecGPT", "VanillaGPT"])
def test_each_system_is_a_session(launcher, data_dir, system):
    with closing(_make(system, launcher)) as session:
        assert isinstance(session, Session)


def test_control_a_class_missing_a_member_is_not_a_session(launcher, data_dir):
    """The runtime check looks at every member: without one, an object is not a Session."""
    class Partial:
        def __init__(self, whole) -> None:
            self._whole = whole
            self.importer = whole.importer

        def __getattr__(self, name):
            if name == "permission_log":
                raise AttributeError(name)
            return getattr(self._whole, name)

    with closing(_make("VanillaGPT", launcher)) as vanilla:
        assert not isinstance(Partial(vanilla), Session)


# --- one query through nothing but the interface -------------------------------------------------------

def _ask(session: Session, query: str):
    with session:
        before = session.stats()
        answer = session.answer(query)
        return (session.info, answer, before, session.stats(), session.permission_log(), session.llm_contexts(),
                session.grants())


@pytest.mark.parametrize("system", ["SecGPT", "VanillaGPT"])
def test_the_same_query_through_the_interface(launcher, data_dir, system):
    info, answer, before, after, decisions, contexts, grants = _ask(_make(system, launcher), Q_ONE)
    assert isinstance(answer, Answer) and answer.error is None and METRO in answer.text
    assert isinstance(after, SessionStats) and after.llm_calls > before.llm_calls
    assert after.prompt_chars > before.prompt_chars
    assert grants == {}  # the consent policy's grant is for this once only
    if system == "SecGPT":
        assert info == SessionInfo(system="SecGPT", isolation="faithful", asks_permissions=True, plans=True)
        assert [s.name for s in answer.plan] == ["metro_hail"]
        assert decisions[0] == PermissionRecord(category="exec", key="metro_hail", expected=True, allowed=True,
                                                source="policy:expected")
        assert any(Q_ONE in text for text in contexts["metro_hail"])  # the request reached that spoke's LLM
    else:
        assert info == SessionInfo(system="VanillaGPT", isolation=None, asks_permissions=False, plans=False)
        assert answer.plan == [] and decisions == [] and contexts == {}


def test_what_a_session_reports_is_its_own(launcher, data_dir):
    """The day's audit log is shared by every session on the data directory: a session's LLM
    contexts and permission decisions are those of its own queries only."""
    first = _ask(_make("SecGPT", launcher), Q_ONE)
    assert "metro_hail" in first[5] and first[4]
    _, answer, _, _, decisions, contexts, _ = _ask(_make("SecGPT", launcher), Q_NOAPP)
    assert answer.error is None and not answer.plan
    assert "metro_hail" not in contexts and decisions == []


def test_grants_and_revoke_through_the_interface(launcher, data_dir):
    console = Console(answers=["3"])  # "Always Allow" metro_hail
    with _make("SecGPT", launcher, consent="ask", console=console) as session:
        assert METRO in session.answer(Q_ONE).text
        assert session.grants() == {"metro_hail:metro_hail": {"exec": "permanent"}}
        assert session.revoke("metro_hail", "exec") and session.grants() == {}
        assert not session.revoke("metro_hail")
    with _make("VanillaGPT", launcher) as vanilla:
        assert vanilla.grants() == {} and not vanilla.revoke("metro_hail")


@pytest.mark.parametrize("system", ["SecGPT", "VanillaGPT"])
def test_the_chats_perms_command_asks_the_session(launcher, data_dir, capsys, system):
    from helpers.utilities.chat_cli import Chat, _command, parser
    (data_dir / "perm.json").write_text(json.dumps({"0": {"metro_hail": {"exec": "permanent"}}}))
    chat = Chat(system, parser("chat", "chat").parse_args([]), interactive=False)
    with _make(system, launcher) as session:
        for line in ("/perms", "/perms revoke metro_hail data", "/perms revoke metro_hail exec", "/perms"):
            _command(chat, session, line)
    shown = capsys.readouterr().out.splitlines()
    if system == "SecGPT":
        assert shown == ["metro_hail: exec=permanent", "no such permission", "revoked", "no stored permissions"]
    else:
        assert shown == ["VanillaGPT has no permission system: every app can use everything."] * 4
