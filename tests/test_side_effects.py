"""hub.effects: which functionalities are asked about at each call. Side effects unless the
specification says ``"side_effects": false``; every functionality that acts keeps the default."""

from __future__ import annotations

import json

import pytest

from helpers.tools.tool_importer import TOOLS_DIR, ToolImporter
from helpers.utilities.errors import ConfigError
from hub.effects import SideEffects
from tests.flow_helpers import FUNCTIONALITIES, importer, mail_importer

READ_ONLY = ["search_gmail", "get_gmail_message", "get_gmail_thread", "google_drive_retrieve", "metro_hail",
             "quick_ride", "convert_units", "count_words", "days_between"]
ACTING = ["send_gmail_message", "create_gmail_draft", "delete_gmail_message", "travel_mate", "health_companion",
          "requests_get", "requests_post", "requests_patch", "requests_put", "requests_delete", "save_note"]


@pytest.fixture(scope="module")
def everything(tmp_path_factory) -> SideEffects:
    base = tmp_path_factory.mktemp("catalogue")
    listing = {"installed_functionalities": json.loads(FUNCTIONALITIES.read_text())["installed_functionalities"]
               + ["google_drive_retrieve"]}
    listing["installed_toolkits"] = {
        "unit_converter": ["convert_units"], "word_tools": ["count_words"], "date_tools": ["days_between"],
        "gmail": ["search_gmail", "get_gmail_message", "get_gmail_thread", "send_gmail_message",
                  "create_gmail_draft", "delete_gmail_message"],
        "requests_all": ["requests_get", "requests_post", "requests_patch", "requests_put", "requests_delete"]}
    (base / "functionalities.json").write_text(json.dumps(listing))
    return SideEffects(ToolImporter(base / "functionalities.json", extra_dirs=importer().extra_dirs))


@pytest.mark.parametrize("name", READ_ONLY)
def test_read_only(everything, name):
    assert everything(name) is False


@pytest.mark.parametrize("name", ACTING)
def test_acting_functionalities_have_side_effects(everything, name):
    assert everything(name) is True


def test_unknown_functionality_has_side_effects(everything):
    assert everything("not_installed") is True


def test_annotation_app_has_none():
    from tests.catalogues import CATALOGUE
    assert SideEffects(ToolImporter(CATALOGUE))("creative_muse") is False


def test_agentdojo_tools_that_act_count(tmp_path, data_dir):
    agentdojo = pytest.importorskip("evaluation.agentdojo.runner")
    from evaluation.agentdojo.suite_apps import load_suite_apps
    suite = agentdojo.load_suite("workspace")
    apps = load_suite_apps("workspace", suite.tools)
    effects = SideEffects(ToolImporter(apps.write_catalogue({t.name: t for t in suite.tools}, tmp_path),
                                       extra_dirs=(tmp_path,)))
    for tool in ("send_email", "delete_email", "create_calendar_event", "share_file", "append_to_file"):
        assert effects(tool) is True


def test_a_flag_that_is_not_a_boolean_is_a_clear_error(data_dir):
    apps = mail_importer(data_dir)
    base = apps.extra_dirs[0]
    (base / "specifications").mkdir(exist_ok=True)
    source = json.loads((TOOLS_DIR / "specifications" / "search_gmail.json").read_text())
    source["side_effects"] = "no"
    (base / "specifications" / "search_gmail.json").write_text(json.dumps(source))
    with pytest.raises(ConfigError, match="side_effects must be true or false"):  # refused at install
        SideEffects(mail_importer(data_dir))("search_gmail")
