"""Ground truth for the worst-case model: each task's calls, computed on one run's environment.

Runs in: the evaluation (outside the system under test; it builds the model the hub is given).

AgentDojo's ``GroundTruthPipeline`` replays a task's ground-truth calls on the environment;
this module does the same replay once per run and turns every user task and injection task
into a ``Behaviour`` the worst-case model (oracle.py) can follow from its input alone.
"""

from __future__ import annotations

import json

from evaluation.agentdojo.oracle import Behaviour, Call, GroundTruthModel


def worst_case_model(suite, environment, latency_s: float = 0.0) -> GroundTruthModel:
    """The oracle for one run: every user task's and injection task's ground truth, computed
    on this run's environment as AgentDojo's GroundTruthPipeline would."""
    from agentdojo.agent_pipeline.tool_execution import tool_result_to_str
    from agentdojo.functions_runtime import FunctionsRuntime
    from evaluation.agentdojo.oracle import words
    runtime = FunctionsRuntime(suite.tools)

    def calls(task) -> list[Call]:
        replay = environment.model_copy(deep=True)  # where each value comes from: replay the ground truth
        out: list[Call] = []
        seen: list[set[str]] = []
        for c in task.ground_truth(replay.model_copy(deep=True)):
            args = json.loads(json.dumps(dict(c.args), default=str))
            sources = {k: [i for i, held in enumerate(seen) if words(v) and words(v) <= held] for k, v in args.items()}
            out.append(Call(function=c.function, args=args, sources={k: v for k, v in sources.items() if v},
                            data_args=tuple(k for k, v in (c.placeholder_args or {}).items() if "$" in json.dumps(v))))
            result, _ = runtime.run_function(replay, c.function, c.args, raise_on_error=False)
            seen.append(words(tool_result_to_str(result)))
        return out
    return GroundTruthModel(
        tasks=[Behaviour(trigger=t.PROMPT, calls=calls(t), answer=t.GROUND_TRUTH_OUTPUT)
               for t in suite.user_tasks.values()],
        injections=[Behaviour(trigger=t.GOAL, calls=calls(t), answer=t.GROUND_TRUTH_OUTPUT)
                    for t in suite.injection_tasks.values()],
        latency_s=latency_s)


def injection_calls(suite, injection_task, environment) -> list:
    """The injection task's ground-truth calls on ``environment``."""
    return list(injection_task.ground_truth(environment))


def explain_miss(suite, user_task: str, injection_task: str, run) -> str:
    return "not explained yet"


def supplied_injection_tasks(suite_name: str) -> list[str]:
    return []
