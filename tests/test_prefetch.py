"""The no-app answer started beside the planner (hub/prefetch.py): it runs at the same time as
the planner's call, is used only by the exact request it was made for, costs one wasted call
(never a wrong answer) when the plan has steps, and holds no app's text."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest

from helpers.isc.messages import ChatMessage, ToolSpec
from helpers.llm.client import LLMClient
from helpers.llm.interface import ChatModel
from helpers.llm.models import make_chat_model
from helpers.templates import prompts
from helpers.tools.retrieval import Retriever
from helpers.utilities.errors import LLMError
from hub.prefetch import Prefetch
from tests import chat_helpers as chat
from tests.flow_helpers import METRO, importer, scripted, secgpt, started

JOKE = "Why did the scarecrow win an award? He was outstanding in his field."
NOVEL = "Zorblax quuxify the glimmerstone."  # shares no word with any installed app
PLAN = '{"steps": [{"name": "metro_hail", "input": {"start_point": "Main Street", "end_point": "Elm Avenue"}}]}'
RULES = [
    {"when": {"system_contains": prompts.PLANNER_MARKER, "query_contains": "Zorblax"}, "then": {"content": PLAN}},
    {"when": {"system_contains": prompts.PLANNER_MARKER, "query_contains": "metro_hail"}, "then": {"content": PLAN}},
    {"when": {"system_contains": prompts.PLANNER_MARKER}, "then": {"content": '{"steps": []}'}},
    {"when": {"called": ["metro_hail"]}, "then": {"content": "The fare: {tools}"}},
    {"when": {"tools_include": ["metro_hail"], "not_called": ["metro_hail"]},
     "then": {"tool_calls": [{"name": "metro_hail",
                              "args": {"start_point": "Main Street", "end_point": "Elm Avenue"}}]}},
    {"when": {}, "then": {"content": JOKE}},
]


class _Recorded(ChatModel):
    """The scripted model, with every call's purpose told by its system prompt, and an optional hook."""

    def __init__(self, inner: ChatModel, before=None) -> None:
        self.inner, self.before = inner, before
        self.systems: list[str] = []
        self.requests: list[list[ChatMessage]] = []

    def complete(self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec] = ()) -> ChatMessage:
        system = messages[0].content if messages and messages[0].role == "system" else ""
        self.systems.append(system)
        self.requests.append(list(messages))
        if self.before is not None:
            self.before(system)
        return self.inner.complete(messages, tools)


def _hub(launcher, tmp_path, before=None, isolation="faithful"):
    model = _Recorded(make_chat_model(scripted(tmp_path, RULES)), before)
    return secgpt(launcher, scripted(tmp_path, RULES), consent="all", chat_model=model, isolation=isolation), model


# --- the retriever's guess ----------------------------------------------------------------------------

@pytest.mark.parametrize("query, relevant", [
    ("Tell me a joke.", False), ("What's new?", False),  # a lone letter ("s") matches nothing
    ("What is the metro_hail fare?", True),                # named
    ("How much is a fare to the airport?", True),          # shares a word with a description
    (NOVEL, False)])
def test_relevant_says_whether_any_app_shares_a_word_with_the_query(query, relevant):
    apps = importer()
    retriever = Retriever([apps.functionality(n) for n in apps.all_functionalities()])
    assert retriever.relevant(query) is relevant


def test_with_no_app_installed_nothing_is_relevant():
    assert Retriever([]).relevant("What is the metro_hail fare?") is False


# --- the prefetch alone -------------------------------------------------------------------------------

class _Says(ChatModel):
    def __init__(self, reply=None, error=None) -> None:
        self.reply, self.error, self.calls = reply, error, 0

    def complete(self, messages, tools=()):
        self.calls += 1
        if self.error is not None:
            raise self.error
        return self.reply


TURN = [chat.system(prompts.VANILLA_SPOKE), chat.user("Tell me a joke.")]


def test_a_prefetched_reply_goes_only_to_the_request_it_was_made_for_and_only_once():
    said = chat.asked(content=JOKE)
    prefetch = Prefetch(LLMClient(_Says(said)), "vanilla", TURN)
    # Control first: the same request gets it (so the refusals below are not a broken prefetch).
    other = [chat.system(prompts.VANILLA_SPOKE), chat.user("Tell me a joke!")]
    assert prefetch.take("vanilla", other) is None                          # another query
    assert prefetch.take("metro_hail", TURN) is None                        # another spoke
    assert prefetch.take("vanilla", TURN, [chat.spec("metro_hail")]) is None  # with tools
    assert prefetch.take("vanilla", [chat.user("x"), *TURN]) is None        # another history
    assert prefetch.take("vanilla", list(TURN)) == said
    assert prefetch.take("vanilla", list(TURN)) is None                     # used up


def test_a_prefetched_call_that_failed_fails_the_request_that_takes_it():
    prefetch = Prefetch(LLMClient(_Says(error=RuntimeError("connection reset"))), "vanilla", TURN)
    with pytest.raises(LLMError, match="the LLM call failed"):
        prefetch.take("vanilla", TURN)


# --- in a real hub --------------------------------------------------------------------------------------

@pytest.mark.parametrize("isolation", ["faithful", "strict"])
def test_a_no_app_query_runs_its_answer_and_the_planner_at_the_same_time(launcher, data_dir, tmp_path, isolation):
    """Each of the two calls waits until the other has begun: run one after the other, the first
    would wait in vain (and the test fail on the timeout)."""
    began = {"planner": threading.Event(), "vanilla": threading.Event()}
    missed = []

    def meet(system: str) -> None:
        me = "planner" if system.startswith(prompts.PLANNER_MARKER) else \
            "vanilla" if system == prompts.VANILLA_SPOKE else None
        if me is None:
            return
        began[me].set()
        other = "vanilla" if me == "planner" else "planner"
        if not began[other].wait(20):
            missed.append(me)

    built, model = _hub(launcher, tmp_path, before=meet, isolation=isolation)
    with built as hub:
        answer = hub.answer("Tell me a joke.")
        stats = hub.stats()
    assert answer.text == JOKE and answer.error is None and answer.route == "vanilla"
    assert not missed, f"{missed} waited for the other call: they ran one after the other"
    assert (stats.prefetched, stats.prefetches_used) == (1, 1)
    # One call each: the vanilla spoke was handed the prefetched reply, not given a second call.
    assert model.systems.count(prompts.VANILLA_SPOKE) == 1
    assert hub.llm.calls_by_purpose["vanilla"] == 1 and hub.llm.calls_by_purpose["planner"] == 1


def test_the_prefetched_call_is_the_one_the_vanilla_spoke_would_make_and_holds_no_app_text(
        launcher, data_dir, tmp_path):
    built, model = _hub(launcher, tmp_path)
    with built as hub:
        hub.answer("Tell me a joke.")
        hub.answer("Tell me another joke.")  # with history this time
        descriptions = [hub.importer.functionality(n).description for n in hub.importer.all_functionalities()]
        history = hub.memory.context("hub")
    vanilla = [r for r in model.requests if r[0].content == prompts.VANILLA_SPOKE]
    assert len(vanilla) == 2
    assert [m.role for m in vanilla[1]] == ["system", *(h["role"] for h in history[:-2]), "user"]
    text = "\n".join(m.content for r in vanilla for m in r)
    assert not [d for d in descriptions if d in text]
    assert "metro_hail" not in text


def test_a_query_an_app_may_serve_starts_nothing_early(launcher, data_dir, tmp_path):
    built, model = _hub(launcher, tmp_path)
    with built as hub:
        answer = hub.answer("What is the metro_hail fare from Main Street to Elm Avenue?")
        stats = hub.stats()
    assert METRO in answer.text
    assert (stats.prefetched, stats.prefetches_used) == (0, 0)
    assert prompts.VANILLA_SPOKE not in model.systems


def test_a_wrong_guess_wastes_one_call_and_never_the_answer(launcher, data_dir, tmp_path):
    """The retriever sees no app in the query, but the planner plans one: the early answer is
    dropped (one call wasted, counted), the app answers, and the vanilla spoke is never asked."""
    built, model = _hub(launcher, tmp_path)
    with built as hub:
        answer = hub.answer(NOVEL)
        stats = hub.stats()
        spokes = started(hub)
    assert METRO in answer.text and JOKE not in answer.text and answer.error is None
    assert (stats.prefetched, stats.prefetches_used) == (1, 0)
    assert model.systems.count(prompts.VANILLA_SPOKE) == 1  # the wasted call
    assert "vanilla" not in spokes and "metro_hail" in spokes


def _fail_vanilla(system: str) -> None:
    if system == prompts.VANILLA_SPOKE:
        raise RuntimeError("connection reset")


def test_a_wasted_call_that_fails_does_not_fail_the_answer(launcher, data_dir, tmp_path):
    built, _ = _hub(launcher, tmp_path, before=_fail_vanilla)
    with built as hub:
        answer = hub.answer(NOVEL)
    assert METRO in answer.text and answer.error is None


def test_a_used_call_that_failed_is_the_answer_s_failure(launcher, data_dir, tmp_path):
    """Control for the test above: the same failure, on a query with no app, is reported."""
    built, _ = _hub(launcher, tmp_path, before=_fail_vanilla)
    with built as hub:
        answer = hub.answer("Tell me a joke.")
    assert answer.error is not None and "LLM call failed" in str(answer.error)
