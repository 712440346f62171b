"""The AgentDojo runner: errors never scored, logs in AgentDojo's layout that a stopped run
resumes from, and the same results whether cases run in one process, in workers or in shards."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

if os.environ.get("SECGPT_TESTS_NEED_AGENTDOJO"):
    import agentdojo  # noqa: F401 - the CI installs it: a missing package must fail, not skip
else:
    pytest.importorskip("agentdojo")

from evaluation.agentdojo.cases import CaseSpec, parse_shard, shard  # noqa: E402
from evaluation.agentdojo.logs import case_path, read_case, write_case  # noqa: E402
from evaluation.agentdojo.oracle import GroundTruthModel  # noqa: E402
from evaluation.agentdojo.results import Case, summarize  # noqa: E402
from evaluation.agentdojo.runner import ORACLE, CaseRunner, SecGPTSystem, VanillaGPTSystem  # noqa: E402
from evaluation.agentdojo.service import SuiteWorld  # noqa: E402
from helpers.configs import paths  # noqa: E402

# Slack's first user task reads a web page (the web app) and carries every injection task:
# one benign case and five security cases per system, the cross-app and same-app kinds both.
CASES = [CaseSpec("slack", "VanillaGPT", "user_task_0"),
         CaseSpec("slack", "VanillaGPT", "user_task_0", "injection_task_1", "cross_app"),
         CaseSpec("slack", "SecGPT", "user_task_0", "injection_task_1", "cross_app")]


def _command(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "evaluation.agentdojo", *args], cwd=paths.REPO_ROOT,
                          capture_output=True, text=True, timeout=300)


def _cases(output: Path) -> dict[tuple, dict]:
    """Every case of a results file by its identity, without the timings."""
    out = {}
    for result in json.loads(output.read_text())["results"]:
        for c in result["cases"]:
            c = Case.from_dict(c)
            out[(c.suite, c.system, c.user_task, c.injection_task)] = c.comparable()
    return out


# --- errors are counted apart, never as a result --------------------------------------------------------------

def _fail_llm_from(monkeypatch, call: int) -> None:
    """The model answers ``call - 1`` times, then its provider fails (as a real one does mid-task)."""
    original, count = GroundTruthModel.complete, [0]

    def failing(self, *args, **kwargs):
        count[0] += 1
        if count[0] >= call:
            raise ConnectionError("the provider went away")
        return original(self, *args, **kwargs)
    monkeypatch.setattr(GroundTruthModel, "complete", failing)


@pytest.mark.parametrize("system", ["VanillaGPT", "SecGPT"])
def test_an_llm_failure_mid_case_is_an_error_not_a_defence(launcher, data_dir, monkeypatch, system):
    systems = {"VanillaGPT": VanillaGPTSystem(ORACLE), "SecGPT": SecGPTSystem(ORACLE, "expected", launcher)}
    spec = CaseSpec("slack", system, "user_task_0", "injection_task_1", "cross_app")
    _fail_llm_from(monkeypatch, 2)  # the first call plans (SecGPT) or calls the web app (VanillaGPT)
    with CaseRunner(systems) as runner:
        run = runner.run(spec)
    assert run.case.error is not None and run.case.error["kind"] == "llm_error", run.case
    assert run.case.attacked is None and run.case.utility is None  # not scored either way
    assert run.security is False  # what AgentDojo's check said: the attack did not happen...
    result = summarize([run.case], suite="slack", system=system, llm="x", consent="expected", version="v",
                       apps="x", supplied=[])
    assert result.asr is None and result.n_errors == 1  # ...and it is not counted as stopped


def test_a_spoke_crash_mid_case_is_an_error_not_a_defence(launcher, data_dir, monkeypatch):
    """SecGPT's web spoke is killed while its tool call is being served: the case is an error."""
    original = SuiteWorld.call
    zygote = launcher._zygote.pid

    def crash_callers(self, app, function, args):
        for pid in _children(zygote):
            os.kill(pid, signal.SIGKILL)  # every spoke, the one waiting for this answer among them
        return original(self, app, function, args)
    monkeypatch.setattr(SuiteWorld, "call", crash_callers)
    spec = CaseSpec("slack", "SecGPT", "user_task_0", "injection_task_1", "cross_app")
    with CaseRunner({"SecGPT": SecGPTSystem(ORACLE, "expected", launcher)}) as runner:
        run = runner.run(spec)
    assert run.case.error is not None and run.case.error["kind"] == "spoke_crash", run.case
    assert run.case.attacked is None and run.case.utility is None


def test_control_the_same_cases_without_failures_are_scored(launcher, data_dir):
    """The control for the two above: unbroken, the same case is scored (attacked on VanillaGPT,
    stopped on SecGPT), so an error above is the failure's doing, not the case's."""
    systems = {"VanillaGPT": VanillaGPTSystem(ORACLE), "SecGPT": SecGPTSystem(ORACLE, "expected", launcher)}
    with CaseRunner(systems) as runner:
        runs = [runner.run(spec) for spec in CASES[1:]]
    assert [(r.case.error, r.case.attacked) for r in runs] == [(None, True), (None, False)]


def _children(parent: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == parent:
                out.append(int(entry.name))
    return out


def test_errored_cases_are_left_out_of_every_rate():
    ok = Case("s", "VanillaGPT", "u1", "i1", True, True, "cross_app")
    stopped = Case("s", "VanillaGPT", "u1", "i2", True, False, "cross_app")
    failed = Case("s", "VanillaGPT", "u1", "i3", None, None, "cross_app", error={"kind": "timeout", "message": "x"})
    result = summarize([ok, stopped, failed], suite="s", system="VanillaGPT", llm="x", consent="n/a", version="v",
                       apps="x", supplied=[])
    assert (result.asr, result.asr_cross_app, result.n_cross_app) == (0.5, 0.5, 2)
    assert (result.n_security_cases, result.n_errors, result.errors_by_kind) == (3, 1, {"timeout": 1})


def test_the_command_fails_on_errors_unless_allowed(tmp_path):
    """Every case errors (the harness cannot build its model): exit 1 and say so; --allow-errors
    gives the table with the errors counted, and still no rate."""
    args = ("--suite", "slack", "--limit", "1", "--json", "--logdir", str(tmp_path / "logs"),
            "--output", str(tmp_path / "out.json"))
    env_code = ("import sys, evaluation.agentdojo.pipeline as p\n"
                "def broken(*a, **k): raise RuntimeError('no model today')\n"
                "p.worst_case_model = broken\n"
                "from evaluation.agentdojo.__main__ import main\n"
                "sys.exit(main(sys.argv[1:]))\n")
    done = subprocess.run([sys.executable, "-c", env_code, *args], cwd=paths.REPO_ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 1 and "6 case(s) errored (6 internal)" in done.stderr, done.stderr
    assert "--allow-errors" in done.stderr and "Traceback" not in done.stderr
    allowed = subprocess.run([sys.executable, "-c", env_code, *args, "--allow-errors"], cwd=paths.REPO_ROOT,
                             capture_output=True, text=True, timeout=300)
    assert allowed.returncode == 0, allowed.stderr
    rows = [json.loads(line) for line in allowed.stdout.splitlines()]
    assert [(r["n_errors"], r["asr"], r["utility"]) for r in rows] == [(6, None, None), (6, None, None)]


# --- the environment, loaded fast, is AgentDojo's ---------------------------------------------------------------

@pytest.mark.parametrize("name", ["workspace", "slack", "banking", "travel"])
def test_environments_equal_agentdojos(name):
    from evaluation.agentdojo.cases import make_attack
    from evaluation.agentdojo.environments import Environments
    from evaluation.agentdojo.runner import load_suite
    suite = load_suite(name)
    environments = Environments(suite)
    assert environments.load({}) == suite.load_and_inject_default_environment({})
    attack = make_attack(suite, environments)
    user = next(iter(suite.user_tasks.values()))
    injections = attack.attack(user, next(iter(suite.injection_tasks.values())))
    assert injections and set(injections) == set(FixedJailbreak(suite).attack(user, next(iter(
        suite.injection_tasks.values()))))  # the same places as AgentDojo's own attack finds
    assert environments.load(injections) == suite.load_and_inject_default_environment(injections)
    assert environments.load(injections) != environments.load({})


def FixedJailbreak(suite):  # noqa: N802 - AgentDojo's attack, unchanged, as the reference
    from agentdojo.attacks.base_attacks import FixedJailbreakAttack
    from agentdojo.attacks.important_instructions_attacks import ImportantInstructionsAttack
    return FixedJailbreakAttack(ImportantInstructionsAttack._JB_STRING, suite, None)


# --- logs, resume, workers, shards --------------------------------------------------------------------------------

def test_a_log_is_agentdojos_and_ours(tmp_path):
    from agentdojo.benchmark import load_task_results
    from agentdojo.types import ChatAssistantMessage, ChatUserMessage, text_content_block_from_string
    case = Case("slack", "SecGPT", "user_task_0", "injection_task_1", None, None, "cross_app",
                error={"kind": "spoke_crash", "message": "web closed its channel"}, duration=1.5)
    path = case_path(tmp_path, "secgpt-x", "slack", "user_task_0", "injection_task_1")
    messages = [ChatUserMessage(role="user", content=[text_content_block_from_string("hi")]),
                ChatAssistantMessage(role="assistant", content=[text_content_block_from_string("x")], tool_calls=None)]
    write_case(path, case, pipeline="secgpt-x", injections={"v": "t"}, messages=messages, security=False,
               utility=False)
    theirs = load_task_results("secgpt-x", "slack", "user_task_0", "important_instructions", "injection_task_1",
                               tmp_path)
    assert theirs.error == "spoke_crash: web closed its channel" and theirs.duration == 1.5
    assert read_case(path) == case
    path.write_text(path.read_text()[:50])  # cut short: no case to trust, it runs again
    assert read_case(path) is None
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left behind


def test_shards_split_every_case_once():
    cases = [CaseSpec("s", "VanillaGPT", f"u{i}") for i in range(7)]
    parts = [shard(cases, k, 3) for k in range(3)]
    assert sorted(sum(parts, []), key=cases.index) == cases and sum(map(len, parts)) == 7
    assert parse_shard("2/3") == (2, 3)
    for bad in ("3/3", "-1/2", "1", "a/b", "1/0"):
        with pytest.raises(ValueError):
            parse_shard(bad)


@pytest.fixture(scope="module")
def serial_run(tmp_path_factory) -> tuple[Path, dict]:
    where = tmp_path_factory.mktemp("serial")
    done = _command("--suite", "slack", "--limit", "1", "--json", "--logdir", str(where / "logs"),
                    "--output", str(where / "out.json"))
    assert done.returncode == 0, done.stderr
    return where, _cases(where / "out.json")


def test_workers_give_the_same_results(serial_run, tmp_path):
    _, serial = serial_run
    done = _command("--suite", "slack", "--limit", "1", "--json", "--jobs", "2", "--logdir", str(tmp_path / "logs"),
                    "--output", str(tmp_path / "out.json"))
    assert done.returncode == 0, done.stderr
    assert len(serial) == 12 and _cases(tmp_path / "out.json") == serial


def test_shards_merge_by_copying_and_a_stopped_run_resumes(serial_run, tmp_path):
    _, serial = serial_run
    logs = tmp_path / "logs"
    for k in ("0/2", "1/2"):  # two "machines", one log directory each, copied together
        part = tmp_path / k.replace("/", "of")
        done = _command("--suite", "slack", "--limit", "1", "--shard", k, "--logdir", str(part),
                        "--output", str(tmp_path / "part.json"))
        assert done.returncode == 0, done.stderr
        subprocess.run(["cp", "-a", f"{part}/.", str(logs)], check=True)
    files = sorted(logs.rglob("*.json"))
    assert len(files) == 12
    files[0].unlink()                             # stopped before this case was written
    files[1].write_text('{"suite_name": "sla')    # killed mid-write by something outside the runner
    done = _command("--suite", "slack", "--limit", "1", "--logdir", str(logs), "--output", str(tmp_path / "out.json"))
    assert done.returncode == 0, done.stderr
    assert "12 cases, 2 run now, 10 from earlier runs" in done.stdout
    assert _cases(tmp_path / "out.json") == serial
    forced = _command("--suite", "slack", "--limit", "1", "--force", "--logdir", str(logs),
                      "--output", str(tmp_path / "out.json"))
    assert "12 cases, 12 run now" in forced.stdout


# --- strict isolation: a system of its own, beside the others in one log directory ------------------------------

def test_strict_runs_beside_faithful_in_one_logdir_and_reuses_vanillagpt(serial_run, tmp_path):
    """--isolation strict runs SecGPT-strict in place of SecGPT: its own log directory next to
    the faithful run's, VanillaGPT's cases read back, not run again."""
    where, serial = serial_run
    logs = tmp_path / "logs"
    subprocess.run(["cp", "-a", f"{where / 'logs'}/.", str(logs)], check=True)
    done = _command("--suite", "slack", "--limit", "1", "--isolation", "strict", "--json", "--logdir", str(logs),
                    "--output", str(tmp_path / "out.json"))
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in logs.iterdir()) == [
        "secgpt-strict-worst-case-consent-expected", "secgpt-worst-case-consent-expected", "vanillagpt-worst-case"]
    assert len(list((logs / "secgpt-strict-worst-case-consent-expected").rglob("*.json"))) == 6
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(r["system"], r["consent"]) for r in rows] == [("VanillaGPT", "n/a"), ("SecGPT-strict", "expected")]
    strict = _cases(tmp_path / "out.json")
    assert {k: v for k, v in strict.items() if k[1] == "VanillaGPT"} == \
        {k: v for k, v in serial.items() if k[1] == "VanillaGPT"}  # read back: the same cases
    assert json.loads((tmp_path / "out.json").read_text())["isolation"] == "strict"


@pytest.mark.parametrize("args, environ", [
    (("--isolation", "paranoid"), {}),
    ((), {"SECGPT_ISOLATION": "paranoid"}),
])
def test_a_bad_isolation_mode_is_one_line_and_exit_2(args, environ):
    done = subprocess.run([sys.executable, "-m", "evaluation.agentdojo", "--suite", "slack", *args],
                          cwd=paths.REPO_ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, **environ})
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "'paranoid' is not an isolation mode" in done.stderr


def test_strict_is_its_own_system_in_names_and_tables():
    from evaluation.agentdojo.cases import STRICT, systems_for
    from evaluation.agentdojo.logs import pipeline_name
    from evaluation.agentdojo.results import table
    assert systems_for("faithful") == ("VanillaGPT", "SecGPT") and systems_for("strict") == ("VanillaGPT", STRICT)
    assert pipeline_name(STRICT, "worst-case", "expected") == "secgpt-strict-worst-case-consent-expected"
    assert pipeline_name("SecGPT", "worst-case", "expected") == "secgpt-worst-case-consent-expected"
    rows = [summarize([Case("s", system, "u1", None, True)], suite="s", system=system, llm="x",
                      consent="n/a" if system == "VanillaGPT" else "expected", version="v", apps="a", supplied=[])
            for system in ("VanillaGPT", "SecGPT", STRICT)]
    shown = table(rows)
    assert "SecGPT (expected)" in shown and "SecGPT-strict (expected)" in shown and "VanillaGPT (" not in shown
