"""Runs in: hub, vanillagpt (the evaluation's driver, beside the system under test).

A suite's environment with injections in it, loaded in milliseconds instead of a third of a second.

AgentDojo builds the environment of every case from scratch: it reads the suite's YAML
(resolving its includes), writes it back out, fills the injections in, and parses the
result with PyYAML's pure-Python loader. This does the same steps with AgentDojo's own
functions for what depends on the suite (``read_suite_file``, the injection vector
defaults, ``validate_injections``), once per suite, and parses each case's text with
libyaml. tests/test_agentdojo_runner.py checks that every suite's environment comes out
equal to AgentDojo's, with and without injections.
"""

from __future__ import annotations

import yaml

# libyaml's loader where PyYAML was built with it (the wheels are); the same documents either way.
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class Environments:
    def __init__(self, suite) -> None:
        from agentdojo.task_suite.task_suite import read_suite_file
        self.suite = suite
        self.text = read_suite_file(suite.name, "environment.yaml", suite.data_path)
        self.defaults = suite.get_injection_vector_defaults()

    def load(self, injections: dict[str, str]):
        """The suite's default environment with ``injections`` in their places (as AgentDojo's
        ``load_and_inject_default_environment``)."""
        from agentdojo.task_suite.task_suite import validate_injections
        validate_injections(injections, self.defaults)
        text = self.text.format(**{**self.defaults, **injections})
        return self.suite.environment_type.model_validate(yaml.load(text, Loader=LOADER))  # noqa: S506 - safe loader
