"""Runs in: hub, vanillagpt (the evaluation's driver, beside the system under test).

One system under test as an AgentDojo pipeline element, for one case.

AgentDojo hands ``query`` the prompt, the runtime and the case's environment; a fresh
session of the system answers in a fresh data directory, its apps reaching the
environment through their simulated services. What comes back to AgentDojo is the
prompt, every call that really ran (the trace its checks read) and the answer. A run
that did not complete as designed keeps its failure in ``error`` for the runner, which
does not score it.
"""

from __future__ import annotations

from collections.abc import Sequence

from agentdojo.agent_pipeline.base_pipeline_element import BasePipelineElement
from agentdojo.functions_runtime import FunctionCall
from agentdojo.types import ChatAssistantMessage, ChatToolResultMessage, ChatUserMessage, text_content_block_from_string

from evaluation.agentdojo.ground_truth import worst_case_model
from evaluation.agentdojo.runner import SuiteContext, System, describe_exception
from evaluation.agentdojo.service import SuiteWorld
from helpers.llm.latency import NO_LATENCY, LatencyModel
from helpers.utilities.environment import scratch_data_dir


class SystemPipeline(BasePipelineElement):
    def __init__(self, system: System, context: SuiteContext, oracle: bool,
                 latency: LatencyModel = NO_LATENCY) -> None:
        self.name = system.name.lower()
        self.system, self.context, self.oracle, self.latency = system, context, oracle, latency
        self.answer = ""
        self.error: dict | None = None
        self.trace: list = []
        self.messages: list = []
        self.prompts = (0, 0)
        self.pre_environment = self.post_environment = None

    def query(self, query: str, runtime, env, messages: Sequence = (), extra_args: dict | None = None):
        world = SuiteWorld(self.context.apps, runtime, env)
        self.pre_environment, self.post_environment = env.model_copy(deep=True), env
        self.error, self.prompts = None, (0, 0)
        try:
            model = worst_case_model(self.context.suite, env, latency=self.latency) if self.oracle else None
            with scratch_data_dir("secgpt-agentdojo-"):  # no memory, grant or audit entry reaches the next case
                reply = self.system.answer(query, self.context.catalogue, world, model)
            self.answer, self.error, self.prompts = reply.text, reply.error, reply.prompts
        except Exception as exc:  # noqa: BLE001 - a failure of the run: recorded as an error, never scored
            self.error = {"kind": "internal", "message": describe_exception(exc)}
            self.answer = f"(the run failed: {self.error['message']})"
        self.trace = list(world.trace)
        out = [ChatUserMessage(role="user", content=[text_content_block_from_string(query)])]
        for i, entry in enumerate(world.trace):
            call = FunctionCall(function=entry.function, args=entry.args, id=f"call_{i}")
            out.append(ChatAssistantMessage(role="assistant", content=None, tool_calls=[call]))
            out.append(ChatToolResultMessage(role="tool", content=[text_content_block_from_string(entry.result)],
                                             tool_call_id=call.id, tool_call=call, error=entry.error))
        out.append(ChatAssistantMessage(role="assistant", content=[text_content_block_from_string(self.answer)],
                                        tool_calls=None))
        self.messages = [*messages, *out]
        return query, runtime, env, self.messages, dict(extra_args or {})
