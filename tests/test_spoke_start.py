"""The spoke start protocol (helpers/isc/spoke_start.py) and where app code is loaded from.

* No app's profile or confinement passes through the zygote: app B's spoke (and the
  zygote) hold none of app A's settings, while A's own spoke does (the control).
* The sandbox report on record is the one the spoke sent before any app code ran; a
  report or ready message the app forges is refused or proves nothing.
* App modules: namespace packages and packages in the repository outside its code
  directories are refused at manifest load; a spoke never imports from its own
  writable directory; the repository's data/ is masked whatever the data directory.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest

from helpers.configs import paths
from helpers.isc import control, spoke_start
from helpers.isc.control import Confinement, SpokeProfile
from helpers.isc.messages import MessageError, SandboxReport, parse_message
from helpers.sandbox.app_spec import AppSpec
from helpers.sandbox.launcher import SpokeProgram
from helpers.sandbox.sandbox import SANDBOX_APP
from helpers.utilities.errors import ConfigError, SpokeError
from hub.audit import AuditLog, read_audit
from hub.broker import SpokeBroker
from tests.sandbox_helpers import is_root, memory_contains, sandbox_code

# A sandbox report an app would like on record: root, no seccomp, no Landlock, no namespaces.
FORGED_REPORT = {"uid": 0, "gid": 0, "rlimits": {}, "seccomp": False, "landlock_abi": 0,
                 "mount_namespace": False, "network_namespace": False}
PROBES = "secgpt_start_probes"  # a package of test apps, outside the repository

# Each app sends a forged start message on its channel (fd 3) while its module is imported,
# i.e. before the spoke's own spoke_ready.
_SEND = ("import json, os, struct\n"
         "def _send(obj):\n"
         "    data = json.dumps(obj).encode()\n"
         "    os.write(3, struct.pack('>I', len(data)) + data)\n")
_PING = "\nFUNCTIONALITIES = {'ping': lambda request, hub: 'pong'}\n"
PROBE_MODULES = {
    # the attack as it worked before: the first frame the hub read was taken as the report
    "forge_ready_report": f"_send({{'type': 'spoke_ready', 'app': 'forger', 'sandbox': {FORGED_REPORT!r}}})",
    "forge_confined": f"_send({{'type': 'spoke_confined', 'app': 'forger', 'sandbox': {FORGED_REPORT!r}}})",
    # well-formed under the new protocol, and taken as "ready": it carries nothing to believe
    "forge_ready": "_send({'type': 'spoke_ready', 'app': 'forger'})",
}


@pytest.fixture(scope="module")
def probes_dir():
    base = Path(tempfile.mkdtemp(prefix="secgpt-probes-"))
    base.chmod(0o755)
    package = base / PROBES
    package.mkdir(mode=0o755)
    (package / "__init__.py").write_text("")
    for name, body in PROBE_MODULES.items():
        (package / f"{name}.py").write_text(_SEND + body + _PING)
    for path in [package, *package.iterdir()]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    yield base
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def fresh_launcher(probes_dir):
    """A zygote of this module's own (a heap that saw only these tests' spawns), with the probe
    apps' package on its path as an installed package would be."""
    from helpers.sandbox import launcher as launcher_module
    original = launcher_module.zygote_environment

    def environment():
        env = original()
        env["PYTHONPATH"] = f"{env['PYTHONPATH']}{os.pathsep}{probes_dir}"
        return env

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(launcher_module, "zygote_environment", environment)
        with launcher_module.SpokeLauncher() as started:
            yield started


@pytest.fixture
def broker(fresh_launcher, data_dir):
    hub = SpokeBroker(fresh_launcher, AuditLog(data_dir / "audit.jsonl"))
    yield hub
    hub.close()
    hub.audit.close()


def _probe(name: str, probes_dir: Path) -> AppSpec:
    return AppSpec(name="forger", module=f"{PROBES}.{name}", extra_read_only=(probes_dir,))


# --- 5. the zygote parses nothing app-specific -------------------------------------------------------

def test_a_spawn_request_says_nothing_about_the_app():
    # The entry is the spoke program, one for every app (the launcher's, not the app's).
    assert set(control.SpawnRequest.model_fields) == {"type", "serial", "entry"}
    assert "app" not in SpokeProgram.__dataclass_fields__


@pytest.mark.skipif(not is_root(), reason="reading other processes' memory needs root")
def test_app_settings_never_reach_the_zygote_or_another_spoke(broker, fresh_launcher):
    secret = f"app-a-setting-{uuid.uuid4().hex}".encode()
    alpha = broker.start(AppSpec(name="alpha", module=SANDBOX_APP.module, profile=SpokeProfile(
        kind="app", app="alpha", settings={"api_token": secret.decode()})))
    beta = broker.start(AppSpec(name="beta", module=SANDBOX_APP.module))
    # The control: the scan finds the setting where it belongs, in A's own spoke.
    assert memory_contains(alpha.process.pid, secret)
    assert not memory_contains(fresh_launcher.zygote_pid, secret), "A's setting is in the zygote's heap"
    assert not memory_contains(beta.process.pid, secret), "A's setting is in B's memory"
    gamma = broker.start(AppSpec(name="gamma", module=SANDBOX_APP.module))  # forked after A ran a while
    assert broker.call(alpha, "run_code", {"code": "print(hub.settings['api_token'][:14])"}).response[
        "stdout"] == "app-a-setting-\n"
    assert not memory_contains(gamma.process.pid, secret)


# --- 6. the sandbox report on record is the spoke's own, from before app code -----------------------

def test_the_forged_report_is_a_valid_report():
    """The control for the tests below: what the apps forge is a well-formed report (uid 0, no
    seccomp), which the old protocol would have recorded as the spoke's sandbox."""
    assert SandboxReport.model_validate(FORGED_REPORT).uid == 0


@pytest.mark.parametrize("probe,refusal", [
    ("forge_ready_report", "not a start message"),
    ("forge_confined", "sent spoke_confined where spoke_ready belongs"),
])
def test_a_forged_report_refuses_the_spoke(broker, probes_dir, data_dir, probe, refusal):
    with pytest.raises(SpokeError, match=refusal):
        broker.start(_probe(probe, probes_dir))
    events = read_audit(data_dir / "audit.jsonl")
    assert [e["event"] for e in events] == ["spoke_refused"] and refusal in events[0]["reason"]


def test_a_forged_ready_changes_nothing_on_record(broker, probes_dir, data_dir, fresh_launcher):
    spoke = broker.start(_probe("forge_ready", probes_dir))
    assert broker.call(spoke, "ping", {}).response == "pong"
    started, = [e for e in read_audit(data_dir / "audit.jsonl") if e["event"] == "spoke_started"]
    report = started["sandbox"]
    assert report == spoke.process.sandbox.model_dump(mode="json")
    assert report["seccomp"] and report["landlock_abi"] == fresh_launcher.landlock_abi
    assert report["rlimits"] == spoke.process.sandbox.rlimits and report["rlimits"]
    if is_root():
        assert report["uid"] == fresh_launcher.identity("forger")[0] != 0 and report["mount_namespace"]
    # The control: the forged frame did reach the hub first and was taken as "ready"; the
    # spoke's own spoke_ready, which came after it, is a malformed frame to the working protocol.
    violations = [e for e in read_audit(data_dir / "audit.jsonl") if e["event"] == "violation"]
    assert violations and "spoke_ready" in violations[0]["detail"]


def test_start_messages_are_not_working_messages():
    """Once a spoke serves requests, nothing it sends can be a start message."""
    report = SandboxReport.model_validate(FORGED_REPORT)
    for message in (spoke_start.SpokeConfined(app="x", sandbox=report), spoke_start.SpokeReady(app="x"),
                    spoke_start.LoadRequest(profile=None)):
        with pytest.raises(MessageError):
            parse_message(message.model_dump_json().encode())


def _confinement(**changes) -> Confinement:
    base = dict(app="x", app_module="", data_dir="/d", read_only=[], read_write=[], masked=[],
                rlimits={"RLIMIT_AS": 1 << 30}, uid=1234, gid=1234, network_namespace=True)
    return Confinement(**{**base, **changes})


TRUE_REPORT = dict(uid=1234, gid=1234, rlimits={"RLIMIT_AS": 1 << 30}, seccomp=True, landlock_abi=7,
                   mount_namespace=True, network_namespace=True)


@pytest.mark.parametrize("field,value", [("uid", 0), ("gid", 0), ("seccomp", False), ("landlock_abi", 0),
                                         ("rlimits", {"RLIMIT_AS": 1 << 40}), ("mount_namespace", False),
                                         ("network_namespace", False), ("seccomp_exceptions", ["file_locks"])])
def test_a_report_that_differs_from_the_confinement_is_refused(field, value):
    assert spoke_start.report_mismatch(_confinement(), SandboxReport(**TRUE_REPORT), 7) is None
    reason = spoke_start.report_mismatch(_confinement(), SandboxReport(**{**TRUE_REPORT, field: value}), 7)
    assert reason and reason.startswith(field)


# --- 7. where app code comes from ----------------------------------------------------------------------

def test_namespace_package_refused(data_dir):
    """``data`` is a namespace package in the hub (the repository root is on its path): the
    old check granted its location, the repository's data/, whenever the data directory was
    elsewhere (as here)."""
    from helpers.tools.tool_importer import module_read_paths
    spec = importlib.util.find_spec("data")
    assert spec is not None and paths.REPO_ROOT / "data" in [Path(p) for p in spec.submodule_search_locations]
    assert paths.data_dir() != paths.REPO_ROOT / "data"
    with pytest.raises(ConfigError, match="namespace package.*__init__.py"):
        module_read_paths("data.x")


@pytest.mark.parametrize("module", ["hub.hub", "evaluation.escape_battery", "tests.conftest", "vanillagpt.x"])
def test_repository_packages_outside_the_code_dirs_refused(data_dir, module):
    from helpers.tools.tool_importer import module_read_paths
    with pytest.raises(ConfigError, match="inside the repository but outside its code directories"):
        module_read_paths(module)


def test_the_repository_app_packages_get_their_own_directory_only(data_dir):
    """evaluation.mcp_servers (case 8's MCP servers) is app code in the repository: its own
    directory is granted, nothing else of evaluation/ (its other modules stay refused)."""
    from helpers.tools.tool_importer import module_read_paths
    assert module_read_paths("evaluation.mcp_servers.mail") == (paths.REPO_ROOT / "evaluation" / "mcp_servers",)
    with pytest.raises(ConfigError, match="outside its code directories"):
        module_read_paths("evaluation.case_studies")


def test_project_and_installed_packages_accepted(data_dir, probes_dir, monkeypatch):
    """Project code and installed libraries need no grant (every spoke reads them); a package
    elsewhere on the path is granted the path's entry it lies in (the import lists it), and
    nothing more."""
    from helpers.tools.tool_importer import module_read_paths
    assert module_read_paths("helpers.tools.apps.metro_hail") == ()
    assert module_read_paths("jsonschema.validators") == ()
    monkeypatch.syspath_prepend(str(probes_dir))
    assert module_read_paths(f"{PROBES}.forge_ready") == (probes_dir.resolve(),)


def test_manifest_naming_a_namespace_package_refused_before_any_spoke(tmp_path, data_dir):
    """Refused when the app is installed (the manifest is loaded), before anything is granted."""
    from helpers.tools.tool_importer import ToolImporter
    (tmp_path / "manifests").mkdir()
    (tmp_path / "specifications").mkdir()
    (tmp_path / "manifests" / "thief.json").write_text(json.dumps(
        {"name": "thief", "description": "x", "module": "data.x", "functionalities": {"thief": "x"}}))
    (tmp_path / "specifications" / "thief.json").write_text(json.dumps(
        {"properties": {"thief": {"properties": {"request": {"type": "object"}, "response": {}}}}}))
    config = tmp_path / "f.json"
    config.write_text(json.dumps({"installed_functionalities": ["thief"]}))
    with pytest.raises(ConfigError, match="thief.json: module: .*namespace package"):
        ToolImporter(config, extra_dirs=(tmp_path,))


def test_spoke_never_imports_from_its_own_directory(hub):
    code = ("import sys, os\nopen('planted_probe.py', 'w').write('VALUE = 42')\n"
            "print('' in sys.path, os.getcwd() in sys.path)\n"
            "try:\n    import planted_probe\n    print('imported')\nexcept ModuleNotFoundError:\n    print('refused')\n"
            # the control: the module is importable as soon as its directory is on the path
            "sys.path.append(os.getcwd())\nimport planted_probe\nprint(planted_probe.VALUE)")
    assert sandbox_code(hub, code).response["stdout"].split() == ["False", "False", "refused", "42"]


@pytest.mark.skipif(not is_root(), reason="the mount view is built as root here (test_nonroot.py covers the rest)")
def test_repository_data_masked_whatever_the_data_dir(hub, data_dir, monkeypatch):
    """Even a spoke granted read access to the repository's data/ (what the old module check
    produced for ``data.x``) finds it empty; the control, with that one mask removed, reads it."""
    from helpers.sandbox.policy import SpokePolicy
    target = paths.REPO_ROOT / "data" / "functionalities.json"
    assert target.exists() and paths.data_dir() != paths.REPO_ROOT / "data"
    code = f"print(open({str(target)!r}).read()[:1])"
    grant = (paths.REPO_ROOT / "data",)
    masked = sandbox_code(hub, code, name="masked_probe", extra_read_only=grant)
    assert masked.response["error_type"] in ("FileNotFoundError", "PermissionError")
    original = SpokePolicy.masked_paths
    monkeypatch.setattr(SpokePolicy, "masked_paths",
                        lambda self: [p for p in original(self) if p != paths.REPO_ROOT / "data"])
    unmasked = sandbox_code(hub, code, name="unmasked_probe", extra_read_only=grant)
    assert unmasked.response["stdout"] == "{\n"
