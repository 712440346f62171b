"""App names at install: none the hub uses itself, none confusable with another installed
app's (the user answers permission dialogs, and the planner picks functionalities, by name)."""

from __future__ import annotations

import json

import pytest

from helpers.tools.app_names import RESERVED_APP_NAMES, reserved, skeleton
from helpers.tools.tool_importer import ToolImporter
from helpers.utilities.errors import ConfigError


def _install(folder, apps: dict[str, list[str]]):
    """Annotation apps (no code) named ``apps``: {app: [functionality, ...]}."""
    (folder / "manifests").mkdir(exist_ok=True)
    (folder / "specifications").mkdir(exist_ok=True)
    for app, functionalities in apps.items():
        (folder / "manifests" / f"{app}.json").write_text(json.dumps(
            {"name": app, "functionalities": {f: "does a thing" for f in functionalities}}))
        (folder / "specifications" / f"{app}.json").write_text(json.dumps(
            {"description": f"the {app} app", "annotation_text": "Answer briefly."}))
    config = folder / "functionalities.json"
    config.write_text(json.dumps({"installed_toolkits": apps}))
    return ToolImporter(config, extra_dirs=(folder,))


@pytest.mark.parametrize("name", sorted(RESERVED_APP_NAMES))
def test_reserved_names_are_refused(tmp_path, data_dir, name):
    with pytest.raises(ConfigError, match=rf"{name}\.json: name: .*'{name}' is reserved .*rename the app"):
        _install(tmp_path, {name: ["do_it"]})


@pytest.mark.parametrize("name", ["Routing", "rout1ng", "vaniIla", "van1lla", "VANILLA", "hub_", "p1anner"])
def test_names_that_read_as_reserved_ones_are_refused(tmp_path, data_dir, name):
    with pytest.raises(ConfigError, match="is reserved"):
        _install(tmp_path, {name: ["do_it"]})


@pytest.mark.parametrize("impostor", ["gmaiI", "gmai1", "GMAIL", "g_mail", "grnail"])
def test_app_confusable_with_an_installed_one_is_refused(tmp_path, data_dir, impostor):
    with pytest.raises(ConfigError, match=rf"'{impostor}' is confusable with 'gmail' of the installed app 'gmail'.*"
                                          rf"rename '{impostor}'"):
        _install(tmp_path, {"gmail": ["search_gmail"], impostor: ["lookup"]})


def test_functionality_confusable_with_another_apps_is_refused(tmp_path, data_dir):
    with pytest.raises(ConfigError, match="'search_gmaiI' is confusable with 'search_gmail'"):
        _install(tmp_path, {"gmail": ["search_gmail"], "mailer": ["search_gmaiI"]})


def test_control_distinct_names_install(tmp_path, data_dir):
    """Control: the same layout with names that read differently installs."""
    importer = _install(tmp_path, {"gmail": ["search_gmail"], "outlook": ["search_outlook"], "router": ["route"]})
    assert sorted(importer.apps) == ["gmail", "outlook", "router"]


@pytest.mark.parametrize("a,b", [("gmail", "gmaiI"), ("gmail", "gmai1"), ("metro_hail", "rnetro_hail"),
                                 ("google", "g00gle"), ("paypal", "раураl"),  # Cyrillic а, р, у
                                 ("wallet", "vvallet"), ("pay", "ｐａｙ"), ("cafe", "café")])
def test_skeletons_of_confusable_names_match(a, b):
    assert skeleton(a) == skeleton(b)


@pytest.mark.parametrize("a,b", [("gmail", "gcal"), ("metro_hail", "quick_ride"), ("notes", "nodes")])
def test_skeletons_of_distinct_names_differ(a, b):
    assert skeleton(a) != skeleton(b)


def test_an_ordinary_name_is_not_reserved():
    assert reserved("travel_mate") is None and reserved("routing_helper") is None
