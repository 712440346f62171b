"""Annotation apps (no code: their own LLM answers, steered by their annotation) keep their
description and annotation text in one place, their specification
(helpers/tools/specifications/<app>.json: "description", "annotation_text"), as the original
shipped them; the catalogue reads them from there and refuses a missing or malformed one in
one line that names the file."""

from __future__ import annotations

import json

import pytest

from helpers.configs import paths
from helpers.tools.tool_importer import TOOLS_DIR, ToolImporter
from helpers.utilities.errors import ConfigError

BUILT_IN = ("creative_muse", "symptom_solver")


def _catalogue(folder, app: str = "muse", spec: object = None, manifest: dict | None = None) -> ToolImporter:
    """``app`` installed as an annotation app from ``folder``, with ``spec`` as its specification
    (a dict is written as JSON, a string as it is, None: no file)."""
    (folder / "manifests").mkdir(exist_ok=True)
    (folder / "specifications").mkdir(exist_ok=True)
    (folder / "manifests" / f"{app}.json").write_text(json.dumps(
        manifest or {"name": app, "functionalities": {app: "Answers in its own way."}}))
    if spec is not None:
        (folder / "specifications" / f"{app}.json").write_text(spec if isinstance(spec, str) else json.dumps(spec))
    listing = folder / "functionalities.json"
    listing.write_text(json.dumps({"available_annotations": [app], "enabled_annotations": [app]}))
    return ToolImporter(listing, extra_dirs=(folder,))


def _one_line_error(folder, **kwargs) -> str:
    with pytest.raises(ConfigError) as caught:
        _catalogue(folder, **kwargs)
    message = str(caught.value)
    assert "\n" not in message, message
    assert any(f"/{kind}/muse.json" in message for kind in ("specifications", "manifests")), message
    return message


@pytest.mark.parametrize("app", BUILT_IN)
def test_built_in_annotation_apps_read_their_specification(data_dir, app):
    spec = json.loads((TOOLS_DIR / "specifications" / f"{app}.json").read_text())
    assert set(spec) == {"description", "annotation_text"}
    installed = ToolImporter(paths.REPO_ROOT / "tests" / "fixtures" / "catalogue.json").apps[app]
    assert installed.manifest.description == spec["description"]
    assert installed.annotation == spec["annotation_text"]
    assert installed.spec([]).profile.annotation == spec["annotation_text"]  # what its spoke is given
    manifest = json.loads((TOOLS_DIR / "manifests" / f"{app}.json").read_text())
    assert not {"description", "annotation", "annotation_text"} & set(manifest)  # one copy only


def test_every_available_annotation_has_a_specification():
    listing = json.loads((paths.REPO_ROOT / "data" / "functionalities.json").read_text())
    assert sorted(listing["available_annotations"]) == sorted(BUILT_IN)
    for app in listing["available_annotations"]:
        assert (TOOLS_DIR / "specifications" / f"{app}.json").is_file()


def test_the_specification_is_the_one_source(tmp_path, data_dir):
    """The built-in manifest with another specification gives another description and annotation."""
    folder = tmp_path / "apps"
    (folder / "specifications").mkdir(parents=True)
    (folder / "specifications" / "creative_muse.json").write_text(json.dumps(
        {"description": "A poet.", "annotation_text": "Answer in verse."}))
    listing = tmp_path / "functionalities.json"
    listing.write_text(json.dumps({"enabled_annotations": ["creative_muse"]}))
    installed = ToolImporter(listing, extra_dirs=(folder,)).apps["creative_muse"]
    assert (installed.manifest.description, installed.annotation) == ("A poet.", "Answer in verse.")


def test_a_missing_specification_is_one_line_naming_the_file(tmp_path, data_dir):
    message = _one_line_error(tmp_path)
    assert message.startswith("annotation app 'muse' has no specification ")
    assert message.endswith('write one with its "description" and "annotation_text"')


@pytest.mark.parametrize("spec,complaint", [
    ({"description": "A muse."}, "annotation_text: Field required"),
    ({"annotation_text": "Be a muse."}, "description: Field required"),
    ({"description": "", "annotation_text": "Be a muse."}, "description: String should have at least 1 character"),
    ({"description": "A muse.", "annotation_text": "Be a muse.", "annotation": "x"}, "annotation: Extra inputs"),
    ({"description": "A muse.", "annotation_text": ["Be", "a muse."]},
     "annotation_text: Input should be a valid string"),
    ("{not json", "top level: Invalid JSON"),
])
def test_a_malformed_specification_is_one_line_naming_the_file_and_key(tmp_path, data_dir, spec, complaint):
    message = _one_line_error(tmp_path, spec=spec)
    assert message.startswith(f"{tmp_path / 'specifications' / 'muse.json'}: {complaint}"), message


def test_control_a_well_formed_specification_installs(tmp_path, data_dir):
    installed = _catalogue(tmp_path, spec={"description": "A muse.", "annotation_text": "Be a muse."}).apps["muse"]
    assert (installed.manifest.description, installed.annotation) == ("A muse.", "Be a muse.")
    assert installed.functionalities["muse"].side_effects is False  # no code: it acts on nothing


@pytest.mark.parametrize("manifest,complaint", [
    ({"name": "muse", "description": "A muse.", "functionalities": {"muse": "x"}},
     "keeps its description in its specification, specifications/muse.json; remove it here"),
    ({"name": "muse", "annotation": "Be a muse.", "functionalities": {"muse": "x"}},
     'specifications/muse.json as "annotation_text", next to its "description"; move both there'),
])
def test_a_second_copy_in_the_manifest_is_refused(tmp_path, data_dir, manifest, complaint):
    message = _one_line_error(tmp_path, spec={"description": "A muse.", "annotation_text": "Be a muse."},
                              manifest=manifest)
    assert complaint in message


def test_an_app_with_code_still_needs_its_description(tmp_path, data_dir):
    manifest = {"name": "muse", "module": "helpers.tools.apps.unit_converter", "functionalities": {"muse": "x"}}
    message = _one_line_error(tmp_path, manifest=manifest)
    assert "description is missing" in message
