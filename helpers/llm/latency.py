"""Runs in: hub, vanillagpt (stdlib only: the LlamaIndex port's benchmark driver loads it in its own environment).

How long a simulated remote LLM takes to answer: the offline models wait this long, so that
benchmarks measure what a user would wait for.

Two models:
* ``fixed``: every call takes the same time (``fixed_s``). Simple, and it overstates short
  replies: a plan of a few tokens costs as much as an answer of hundreds.
* ``tokens``: time to first token, then each output token in turn
  (``ttft_s + tokens × per_token_s``), as a streaming API delivers it. The defaults are the
  median figures Artificial Analysis measured for GPT-4o on OpenAI's API: 0.39 s to the first
  token, 81 output tokens per second (artificialanalysis.ai/models/gpt-4o-2024-05-13/providers).
  Output tokens are counted as characters / 4 (OpenAI's rule of thumb for English text); a tool
  call counts as its name and JSON arguments. Prompt length is not modelled: the measured
  TTFT already includes a typical prompt's processing.

Must never: import anything outside the standard library.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

LatencyKind = Literal["fixed", "tokens"]
LATENCY_KINDS: tuple[LatencyKind, ...] = ("fixed", "tokens")
TTFT_S = 0.39
PER_TOKEN_S = 1 / 81
CHARS_PER_TOKEN = 4


@dataclass(frozen=True)
class LatencyModel:
    kind: LatencyKind = "fixed"
    fixed_s: float = 0.0          # fixed: the time of every call
    ttft_s: float = TTFT_S        # tokens: time to the first token
    per_token_s: float = PER_TOKEN_S  # tokens: time of each further output token

    def __post_init__(self) -> None:
        if self.kind not in LATENCY_KINDS:
            raise ValueError(f"latency model {self.kind!r} is unknown: use fixed or tokens")
        if min(self.fixed_s, self.ttft_s, self.per_token_s) < 0:
            raise ValueError("a simulated latency cannot be negative")

    @property
    def simulated(self) -> bool:
        """Whether any call waits at all."""
        return self.fixed_s > 0 if self.kind == "fixed" else (self.ttft_s > 0 or self.per_token_s > 0)

    def seconds(self, content: str, calls: Iterable[tuple[str, Mapping[str, Any]]] = ()) -> float:
        """The time a reply of this text and these tool calls takes to arrive."""
        if self.kind == "fixed":
            return self.fixed_s
        return self.ttft_s + output_tokens(content, calls) * self.per_token_s

    def describe(self) -> str:
        if self.kind == "fixed":
            return f"fixed {round(self.fixed_s * 1000)} ms per call"
        return (f"tokens: {round(self.ttft_s * 1000)} ms to the first token + "
                f"{self.per_token_s * 1000:.1f} ms per output token")

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "fixed_ms": round(self.fixed_s * 1000, 3), "ttft_ms": round(self.ttft_s * 1000, 3),
                "ms_per_token": round(self.per_token_s * 1000, 3)}


def output_tokens(content: str, calls: Iterable[tuple[str, Mapping[str, Any]]] = ()) -> int:
    """A reply's output tokens, estimated from its length (at least one)."""
    chars = len(content) + sum(len(name) + len(json.dumps(dict(args), ensure_ascii=False)) for name, args in calls)
    return max(1, math.ceil(chars / CHARS_PER_TOKEN))


def latency_model(kind: str, fixed_ms: float = 0.0, ttft_ms: float | None = None,
                  ms_per_token: float | None = None) -> LatencyModel:
    """From command-line values (milliseconds); a missing token figure takes its default. Each
    model keeps only its own figures (the other's stay at their defaults)."""
    if kind == "fixed":
        return LatencyModel(fixed_s=fixed_ms / 1000)
    return LatencyModel(kind=kind,  # type: ignore[arg-type]  # checked in __post_init__
                        ttft_s=TTFT_S if ttft_ms is None else ttft_ms / 1000,
                        per_token_s=PER_TOKEN_S if ms_per_token is None else ms_per_token / 1000)


NO_LATENCY = LatencyModel()


BOTH = "both"  # a command that runs its work once per model (the benchmark) may offer it


def latency_options(parser: argparse.ArgumentParser, default: str = "fixed") -> None:
    """The options that choose the model, beside the command's own ``--latency-ms`` (fixed).
    ``default`` "both" also offers ``--latency-model both``."""
    kinds = (*LATENCY_KINDS, BOTH) if default == BOTH else LATENCY_KINDS
    parser.add_argument("--latency-model", choices=kinds, default=default,
                        help="fixed: --latency-ms per call; tokens: time to first token + output tokens x time "
                             f"per token{'; both: one after the other' if default == BOTH else ''} "
                             f"(default: {default})")
    parser.add_argument("--ttft-ms", type=float, default=None, metavar="MS",
                        help=f"tokens model: time to the first token (default {TTFT_S * 1000:.0f}, "
                             "GPT-4o's published median)")
    parser.add_argument("--ms-per-token", type=float, default=None, metavar="MS",
                        help=f"tokens model: time of each output token (default {PER_TOKEN_S * 1000:.1f}, "
                             "GPT-4o's published median)")


def latency_models(args: argparse.Namespace, fixed_ms: float | None = None) -> dict[str, LatencyModel]:
    """The models the options name, by kind (``both``: each); ``fixed_ms`` replaces ``--latency-ms``
    as the fixed model's time. ValueError: say it with ``parser.error``."""
    kinds = LATENCY_KINDS if args.latency_model == BOTH else (args.latency_model,)
    if "tokens" not in kinds and (args.ttft_ms is not None or args.ms_per_token is not None):
        raise ValueError("--ttft-ms and --ms-per-token belong to --latency-model tokens")
    if args.latency_ms < 0:
        raise ValueError("--latency-ms cannot be negative")
    ms = args.latency_ms if fixed_ms is None else fixed_ms
    return {kind: latency_model(kind, ms, args.ttft_ms, args.ms_per_token) for kind in kinds}


def latency_from_args(args: argparse.Namespace) -> LatencyModel:
    """The one model the options name (a command with one run: ``--latency-ms`` goes with fixed only)."""
    if args.latency_model == "tokens" and args.latency_ms:
        raise ValueError("--latency-ms is the fixed model's; the tokens model takes --ttft-ms and --ms-per-token")
    return latency_models(args)[args.latency_model]
