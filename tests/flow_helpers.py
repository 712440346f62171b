"""Helpers for the end-to-end flow tests: a hub or VanillaGPT on the test apps and script."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from helpers.llm.config import LLMConfig
from helpers.tools.tool_importer import ToolImporter
from hub.audit import read_audit

HERE = Path(__file__).parent
SCRIPT = HERE / "fixtures" / "flows.json"
FUNCTIONALITIES = HERE / "fixtures" / "functionalities.json"
APPS = HERE / "fixtures" / "apps"

Q_NOAPP = "Tell me a joke."
Q_ONE = "What is the metro_hail fare from Main Street to Elm Avenue?"
Q_FARE = "What is the fare from Main Street to Elm Avenue?"
Q_BOTH = "Compare the metro_hail and quick_ride fares from Main Street to Elm Avenue."
Q_DEP = "Get the metro_hail fare from Main Street to Elm Avenue and save it as a note."
Q_CROSS = "Get the metro_hail fare from Main Street to Elm Avenue, and also ask quick_ride."
Q_UNKNOWN = "Get the metro_hail fare from Main Street to Elm Avenue, then teleport me there."
Q_INTRO = "My name is Ada Lovelace, my email is ada@example.com and I have severe asthma."
Q_FLIGHT = "Book a flight from London to Paris on June 10th."
METRO, QUICK = "$51.80", "$57.00"


def importer() -> ToolImporter:
    return ToolImporter(FUNCTIONALITIES, extra_dirs=(APPS,))


class Console:
    """Answers permission questions from a list, or as a user model decides from the dialog
    just shown (``decide``), and keeps what was shown."""

    def __init__(self, answers=(), decide: Callable[[str], str] | None = None) -> None:
        self.answers = list(answers)
        self.decide = decide
        self.shown: list[str] = []
        self.asked: list[str] = []

    def read(self, prompt: str) -> str:
        self.asked.append(prompt)
        if self.decide is not None:
            return self.decide(self.shown[-1] if self.shown else "")
        if not self.answers:
            raise AssertionError(f"unexpected question: {prompt}")
        return self.answers.pop(0)

    def dialogs(self) -> list[str]:
        """The permission dialogs shown, in order."""
        return [text for text in self.shown if text.startswith("Allow ")]

    def write(self, text: str) -> None:
        self.shown.append(text)


@contextmanager
def secgpt(launcher, llm: LLMConfig, consent="expected", answers=(), decide=None,
           apps: ToolImporter | None = None, **kwargs):
    from hub.hub import Hub
    console = Console(answers, decide)
    hub = Hub(llm, consent=consent, importer=apps or importer(), read=console.read, write=console.write,
              launcher=launcher, **kwargs)
    hub.console = console
    with hub:
        yield hub
    assert not console.answers, f"answers left unused: {console.answers}"


@contextmanager
def vanillagpt(llm: LLMConfig):
    from vanillagpt.vanillagpt import VanillaGPT
    with VanillaGPT(llm, importer=importer()) as vanilla:
        yield vanilla


def audit(hub) -> list[dict]:
    return read_audit(hub.audit.path)


def permissions(hub) -> list[tuple[str, str, bool, bool]]:
    """(category, key, expected, allowed) of every permission decision, in order."""
    return [(e["category"], e["key"], e["expected"], e["allowed"]) for e in audit(hub) if e["event"] == "permission"]


def llm_texts(hub, app: str) -> list[str]:
    """Everything spoke ``app`` sent to the LLM, as text (from the hub's audit log)."""
    texts = []
    for e in audit(hub):
        if e["event"] == "from_spoke" and e["app"] == app and e["message"]["type"] == "llm_request":
            m = e["message"]
            texts.append("\n".join([x["content"] for x in m["messages"]]
                                   + [t["description"] for t in m["tools"]]))
    return texts


def started(hub) -> list[str]:
    return [e["app"] for e in audit(hub) if e["event"] == "spoke_started"]


# --- a mail world: gmail (local backend) next to the ride apps, for the permission attacks -----------

MAIL_APPS = ("metro_hail", "quick_ride", "save_note")
GMAIL = ("search_gmail", "send_gmail_message", "delete_gmail_message")


def scripted(directory: Path, rules: list[dict]) -> LLMConfig:
    """The scripted worst-case model with ``rules`` (memory upkeep answered first)."""
    path = directory / "script.json"
    path.write_text(json.dumps({"rules": [
        {"when": {"query_contains": "Extract the facts about the user"}, "then": {"content": "{}"}},
        {"when": {"query_contains": "Summarise this conversation"}, "then": {"content": "Summary."}},
        *rules]}))
    return LLMConfig(provider="scripted", model="scripted", script=path)


def mail_importer(data_dir: Path, descriptions: dict[str, str] | None = None) -> ToolImporter:
    """gmail (search, send, delete) and the ride apps; ``descriptions`` replaces what an app's
    functionalities say to the planner (a vendor's text: the app never has to run)."""
    base = data_dir.parent / "catalogue"
    (base / "manifests").mkdir(parents=True, exist_ok=True)
    for name, text in (descriptions or {}).items():
        manifest = json.loads((Path(__file__).parents[1] / "helpers" / "tools" / "manifests" / f"{name}.json")
                              .read_text())
        manifest["functionalities"] = {f: text for f in manifest["functionalities"]}
        (base / "manifests" / f"{name}.json").write_text(json.dumps(manifest))
    listing = base / "functionalities.json"
    listing.write_text(json.dumps({"installed_functionalities": list(MAIL_APPS),
                                   "installed_toolkits": {"gmail": list(GMAIL)}}))
    return ToolImporter(listing, extra_dirs=(base, APPS))


def mailbox(data_dir: Path):
    from helpers.tools.google.local_api import LocalGoogleAccount
    return LocalGoogleAccount(data_dir / "google_local")


def sent_to(data_dir: Path) -> list[str]:
    """The recipients of every mail the local Gmail account sent."""
    return [", ".join(to) if isinstance(to := m.get("to", ""), list) else to for m in mailbox(data_dir).outbox()]


def weaken(hub, manager_class) -> None:
    """Replace the hub's permission manager with ``manager_class`` (a test's explicitly weakened
    one, to show what an attack does without a fix)."""
    old = hub.permissions
    hub.permissions = hub.operator.permissions = manager_class(
        old.store, old.mode, old._read, old._write, on_decision=old._on_decision)
