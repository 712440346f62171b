"""User-added apps (a module + manifest + specification), a wrapped LangChain tool and a
wrapped LlamaIndex tool: each runs isolated in its own spoke. Retrieval keeps the
planner prompt bounded however many apps are installed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers.isc.messages import AppResponse
from helpers.tools.generated_catalogue import write_generated_catalogue
from helpers.tools.retrieval import LIST_ALL_UP_TO, Retriever
from helpers.tools.tool_importer import ToolImporter
from hub.audit import AuditLog
from hub.broker import SpokeBroker
from tests.catalogues import CATALOGUE, SAMPLES as BUILTIN_SAMPLES

USER_APPS = Path(__file__).parent / "fixtures" / "user_apps.json"
CASES = [
    ("unit_converter", "convert_units", {"value": 10, "from_unit": "km", "to_unit": "mi"}, "10 km = 6.21 mi"),
    ("word_tools", "count_words", {"text": "one two three"}, "3"),
    ("date_tools", "days_between", {"start": "2026-01-01", "end": "2026-03-01"}, "59"),
]


@pytest.mark.parametrize("app,functionality,request_,expected", CASES, ids=[c[0] for c in CASES])
def test_user_app_runs_isolated(launcher, data_dir, app, functionality, request_, expected):
    importer = ToolImporter(USER_APPS)
    broker = SpokeBroker(launcher, AuditLog(None))
    try:
        spoke = broker.start(importer.app_spec(app))
        assert spoke.process.sandbox.seccomp
        outcome = broker.call(spoke, functionality, request_)
        assert isinstance(outcome, AppResponse) and outcome.response == expected
    finally:
        broker.close()


def test_bad_manifest_names_file_and_key(tmp_path, data_dir):
    from helpers.utilities.errors import ConfigError
    (tmp_path / "manifests").mkdir()
    (tmp_path / "manifests" / "broken.json").write_text(json.dumps(
        {"name": "broken", "description": "x", "module": "helpers.tools.apps.x", "functionalities": {"broken": "x"},
         "allowed_domains": ["mail.google.com"]}))
    config = tmp_path / "f.json"
    config.write_text(json.dumps({"installed_functionalities": ["broken"]}))
    with pytest.raises(ConfigError, match=r"broken\.json: allowed_domains: .*registrable domain"):
        ToolImporter(config, extra_dirs=(tmp_path,))
    config.write_text(json.dumps({"installed_functionalities": ["nope"]}))
    with pytest.raises(ConfigError, match="has no manifest"):
        ToolImporter(config, extra_dirs=(tmp_path,))
    config.write_text('{"installed_functionalities": "quick_ride"}')
    with pytest.raises(ConfigError, match=r"f\.json: installed_functionalities"):
        ToolImporter(config)


def test_every_functionality_in_vanillagpt(data_dir):
    """The same apps work in the baseline, in its single process."""
    import httpx

    from helpers.llm.config import LLMConfig
    from helpers.sandbox.http_broker import HttpBroker
    from helpers.tools.google.local_api import LocalGoogleAccount, LocalGoogleAPI
    from tests.flow_helpers import SCRIPT
    from tests.http_helpers import echo_network, public_resolver
    from vanillagpt.vanillagpt import VanillaGPT

    account = LocalGoogleAccount(data_dir / "google_local")
    account.add_email("billing@shop.example", "me@example.com", "Your invoice", "Please pay by Friday.")
    account.add_email("bob@example.com", "me@example.com", "Lunch?", "Lunch at noon?")
    account.add_document("budget.txt", "Q3 budget: 1200 dollars")
    (data_dir / "app_settings.json").write_text(json.dumps({"requests_all": {"allowed_domains": "example.org"}}))
    http = HttpBroker(transport=httpx.MockTransport(echo_network), local_google=LocalGoogleAPI(account),
                      resolver=public_resolver)
    vanilla = VanillaGPT(LLMConfig(provider="scripted", model="s", script=SCRIPT),
                         importer=ToolImporter(CATALOGUE), http=http)
    tools = {t.spec.name: t for t in vanilla.tools}
    for name, (request, expected) in BUILTIN_SAMPLES.items():
        assert expected in tools[name].run(request), name
    assert "SymptomSolver" in vanilla.system_prompt() and "fictional story" in vanilla.system_prompt()
    http.close()


@pytest.mark.parametrize("count", [10, 500])
def test_planner_prompt_stays_bounded(tmp_path, data_dir, count):
    from helpers.isc.messages import ChatMessage
    from hub.planner import Planner

    importer = ToolImporter(write_generated_catalogue(tmp_path, count), extra_dirs=(tmp_path,))
    retriever = Retriever([importer.functionality(n) for n in importer.all_functionalities()])
    query = "What is the metro_hail fare from Main Street to Elm Avenue?"
    chosen = retriever.candidates(query)
    installed = importer.all_functionalities()
    if len(installed) <= LIST_ALL_UP_TO:  # a small catalogue is listed whole
        assert sorted(f.name for f in chosen) == installed
    else:
        assert "metro_hail" in [f.name for f in chosen] and len(chosen) <= 8

    class Recorder:
        prompts: list[str] = []

        def complete(self, messages, tools=(), purpose=""):
            self.prompts.append(messages[0].content)
            return ChatMessage(role="assistant", content='{"steps": []}')
    recorder = Recorder()
    Planner(recorder).plan(query, chosen)
    assert len(recorder.prompts[0]) < 3000
    if len(installed) <= LIST_ALL_UP_TO:
        return
    weather = [f.name for f in retriever.candidates("Will it rain tomorrow? weather please")]
    assert weather and all("weather" in importer.functionality(n).description for n in weather)
