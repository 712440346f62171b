"""Runs in: hub, vanillagpt.

What the hub needs to run one app in a spoke: code, egress, limits, agent profile.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from helpers.configs import paths
from helpers.isc.control import SpokeProfile
from helpers.sandbox.budget import Budget
from helpers.sandbox.policy import ResourceLimits, SpokePolicy


@dataclass(frozen=True)
class AppSpec:
    """What the hub needs to run one app in a spoke."""

    name: str
    module: str
    allowed_domains: frozenset[str] = frozenset()
    limits: ResourceLimits = field(default_factory=ResourceLimits)
    extra_read_only: tuple[Path, ...] = ()
    profile: SpokeProfile | None = None
    sandbox_exceptions: frozenset[str] = frozenset()  # names in policy.POLICY_EXCEPTIONS
    budget: Budget = field(default_factory=Budget)  # what it may cost the hub per query (hub/budget.py)
    # An MCP server run as a command: its argv (argv[0] an absolute path) and extra environment;
    # the spoke starts it as its own confined process (helpers/sandbox/server_process.py).
    server_command: tuple[str, ...] = ()
    server_env: Mapping[str, str] = field(default_factory=dict, hash=False)

    def policy(self) -> SpokePolicy:
        return SpokePolicy(app=self.name, data_dir=paths.app_data_dir(self.name), limits=self.limits,
                           extra_read_only=self.extra_read_only, exceptions=self.sandbox_exceptions,
                           server_command=self.server_command, server_env=dict(self.server_env))
