"""The simulated LLM latency (helpers/llm/latency.py): what each model charges for a reply, and
that the offline models wait that long."""

from __future__ import annotations

import argparse
import math
import time

import pytest

from helpers.isc.messages import ChatMessage, ToolCall
from helpers.llm.latency import (
    PER_TOKEN_S,
    TTFT_S,
    LatencyModel,
    latency_from_args,
    latency_models,
    latency_options,
    output_tokens,
)
from helpers.llm.offline import OfflineModel


class _Says(OfflineModel):
    def __init__(self, reply: ChatMessage, latency: LatencyModel) -> None:
        super().__init__(latency)
        self._reply = reply

    def reply(self, messages, tools):
        return self._reply


def test_fixed_charges_every_reply_the_same():
    model = LatencyModel(fixed_s=0.5)
    assert model.seconds("") == model.seconds("x" * 4000) == 0.5


def test_tokens_charges_first_token_then_each_output_token():
    model = LatencyModel(kind="tokens", ttft_s=0.4, per_token_s=0.01)
    assert model.seconds("abcd") == pytest.approx(0.41)  # one token
    assert model.seconds("a" * 400) == pytest.approx(0.4 + 100 * 0.01)
    # a plan of a few tokens costs much less than an answer of hundreds
    assert model.seconds('{"steps": []}') < model.seconds("word " * 300) / 3


def test_a_tool_call_counts_its_name_and_json_arguments():
    args = {"start_point": "Main Street"}
    assert output_tokens("", [("metro_hail", args)]) == math.ceil((10 + len('{"start_point": "Main Street"}')) / 4)
    assert output_tokens("") == 1  # even an empty reply takes a token to arrive


def test_the_defaults_are_the_published_gpt_4o_figures():
    assert (TTFT_S, round(1 / PER_TOKEN_S)) == (0.39, 81)
    assert LatencyModel(kind="tokens").seconds("a" * 4 * 81) == pytest.approx(0.39 + 1.0)


@pytest.mark.parametrize("kwargs", [{"kind": "slow"}, {"fixed_s": -1}, {"kind": "tokens", "per_token_s": -0.1}])
def test_a_wrong_model_is_refused(kwargs):
    with pytest.raises(ValueError):
        LatencyModel(**kwargs)


@pytest.mark.parametrize("model, simulated", [(LatencyModel(), False), (LatencyModel(fixed_s=0.1), True),
                                              (LatencyModel(kind="tokens"), True),
                                              (LatencyModel(kind="tokens", ttft_s=0, per_token_s=0), False)])
def test_simulated_says_whether_a_call_waits(model, simulated):
    assert model.simulated is simulated


def test_an_offline_model_waits_as_long_as_its_reply_takes():
    """The wait is charged for the reply actually given: a longer answer waits longer."""
    latency = LatencyModel(kind="tokens", ttft_s=0.02, per_token_s=0.002)
    short = _Says(ChatMessage(role="assistant", content="ok"), latency)
    long = _Says(ChatMessage(role="assistant", content="x" * 200,
                             tool_calls=[ToolCall(id="c1", name="f", args={"a": 1})]), latency)
    for model in (short, long):
        expected = latency.seconds(model._reply.content, [(c.name, c.args) for c in model._reply.tool_calls])
        started = time.monotonic()
        model.complete([ChatMessage(role="user", content="hi")])
        assert time.monotonic() - started >= expected
    assert latency.seconds("x" * 200) > 4 * latency.seconds("ok")


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency-ms", type=int, default=0)
    latency_options(parser)
    return parser.parse_args(list(argv))


def test_options_build_the_model():
    assert latency_from_args(_parse("--latency-ms", "500")) == LatencyModel(fixed_s=0.5)
    assert latency_from_args(_parse("--latency-model", "tokens")) == LatencyModel(kind="tokens")
    assert latency_from_args(_parse("--latency-model", "tokens", "--ttft-ms", "200", "--ms-per-token", "5")) \
        == LatencyModel(kind="tokens", ttft_s=0.2, per_token_s=0.005)


@pytest.mark.parametrize("argv, words", [(("--ttft-ms", "100"), "belong to --latency-model tokens"),
                                         (("--latency-model", "tokens", "--latency-ms", "5"), "fixed model's"),
                                         (("--latency-ms", "-5"), "cannot be negative")])
def test_options_that_do_not_fit_are_refused(argv, words):
    with pytest.raises(ValueError, match=words):
        latency_from_args(_parse(*argv))


def test_both_names_each_model_and_the_fixed_time_may_be_replaced():
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency-ms", type=int, default=500)
    latency_options(parser, default="both")
    args = parser.parse_args(["--ttft-ms", "100"])
    assert latency_models(args) == {"fixed": LatencyModel(fixed_s=0.5),
                                    "tokens": LatencyModel(kind="tokens", ttft_s=0.1)}
    assert latency_models(args, fixed_ms=200)["fixed"] == LatencyModel(fixed_s=0.2)
    with pytest.raises(ValueError, match="belong to --latency-model tokens"):
        latency_models(parser.parse_args(["--latency-model", "fixed", "--ms-per-token", "3"]))
