"""Every attack in the battery is contained, and the hub still serves afterwards; each attack with
a control works unconfined, and the port attacks are refused for their port alone."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from evaluation.escape_battery import ATTACKS, Battery, planted_world
from helpers.sandbox.egress import check
from hub.audit import AuditLog
from hub.broker import SpokeBroker


@pytest.fixture(scope="module")
def battery(launcher):
    with tempfile.TemporaryDirectory(prefix="secgpt-battery-") as tmp, planted_world(Path(tmp)) as world:
        hub = SpokeBroker(launcher, AuditLog(Path(tmp) / "audit.jsonl"))
        yield Battery(hub, world)
        hub.close()


def test_battery_is_large_and_distinct():
    names = [a.name for a in ATTACKS]
    assert len(names) == len(set(names)) >= 25


@pytest.mark.parametrize("attack", ATTACKS, ids=[a.name for a in ATTACKS])
def test_attack_is_contained(battery, attack):
    result = battery.run(attack)
    assert result.contained, f"{attack.name} ({attack.goal}) was not contained: {result.outcome}: {result.detail}"
    assert result.hub_alive, f"after {attack.name} the hub no longer serves the victim spoke"


def test_battery_detects_an_escape(battery):
    """The checks can fail: the same harness flags code that is not stopped as an escape."""
    from evaluation.escape_battery import Attack
    harmless = Attack("control", "nothing", "print('done')", "raises", ("PermissionError",))
    result = battery.run(harmless)
    assert result.outcome == "finished" and not result.contained


CONTROLLED = [a for a in ATTACKS if a.control]


@pytest.fixture(scope="module")
def control():
    from evaluation.escape_battery import control_context
    with tempfile.TemporaryDirectory(prefix="secgpt-control-") as tmp, planted_world(Path(tmp)) as world, \
            control_context(world) as context:
        yield context


def test_controls_cover_the_new_attacks():
    assert len(CONTROLLED) >= 9


@pytest.mark.parametrize("attack", CONTROLLED, ids=[a.name for a in CONTROLLED])
def test_attack_works_unconfined(control, attack):
    """The control: without any sandbox layer the same code succeeds, so containing it is the
    sandbox's doing (an attack that fails everywhere would prove nothing)."""
    from evaluation.escape_battery import run_unconfined
    kind, detail, _ = run_unconfined(attack, control)
    assert kind == "finished", f"{attack.name} fails even unconfined ({detail}): its containment proves nothing"


PORT_ATTACKS = ("egress_local_llm_port", "egress_other_local_port", "egress_domain_other_port")


@pytest.mark.parametrize("name", PORT_ATTACKS)
def test_control_battery_port_attacks_are_refused_for_their_port_alone(name):
    """Control for the escape battery's port attacks: the URL each one tries is refused under its
    app's entries, and admitted once that port is listed: the port rule is what contains it."""
    attack = next(a for a in ATTACKS if a.name == name)
    url = re.search(r"hub\.http\('GET', '([^']+)'\)", attack.code).group(1)
    parts = urlsplit(url)
    decision = check(url, attack.allowed_domains)
    assert not decision.allowed and "port" in decision.reason
    assert check(url, attack.allowed_domains | {f"{decision.domain}:{parts.port}"}).allowed
