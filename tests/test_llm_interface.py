"""The one LLM interface: the LangChain adapter converts both ways, the two offline models share
one base, and the LLM client charges and reports through what its owner hands it."""

from __future__ import annotations

import time
from typing import Any

import pytest
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from evaluation.agentdojo.oracle import Behaviour, Call, GroundTruthModel
from helpers.llm.client import LLMClient, prompt_bytes
from helpers.llm.config import LLMConfig
from helpers.llm.interface import ChatModel
from helpers.llm.langchain_model import LangChainModel, from_langchain, to_langchain
from helpers.llm.latency import LatencyModel
from helpers.llm.models import make_chat_model
from helpers.llm.offline import OfflineModel
from helpers.llm.scripted import Script, ScriptedChatModel
from helpers.utilities.errors import LLMError
from tests import chat_helpers as chat

FARE = chat.spec("metro_hail", "MetroHail fares.",
                 {"type": "object", "properties": {"start_point": {"type": "string"}}})
CONVERSATION = [chat.system("You help."), chat.user("A fare from Main Street, please."),
                chat.asked(("metro_hail", {"start_point": "Main Street", "stops": [1, {"x": None}]}, "c1"),
                           ("metro_hail", {}, "c2"), content="Let me look."),
                chat.result_of(chat.asked(("metro_hail", {}, "c1")).tool_calls[0], "$51.80"),
                chat.result_of(chat.asked(("metro_hail", {}, "c2")).tool_calls[0], "$12.00"),
                chat.asked(content="MetroHail: $51.80.")]


class Recording(BaseChatModel):
    """A LangChain chat model that answers ``reply`` and keeps what it was sent and bound."""
    reply: AIMessage
    seen: list = []
    bound: list = []

    @property
    def _llm_type(self) -> str:
        return "recording"

    def bind_tools(self, tools: list, **kwargs: Any):
        self.bound.append(tools)
        return self.bind(tools=tools, **kwargs)

    def _generate(self, messages, stop=None, run_manager=None, **kwargs: Any) -> ChatResult:
        self.seen.append(list(messages))
        return ChatResult(generations=[ChatGeneration(message=self.reply)])


# --- the LangChain adapter ----------------------------------------------------------------------------------

def test_the_adapter_round_trips_every_role_and_tool_calls():
    converted = [to_langchain(m) for m in CONVERSATION]
    assert [type(m) for m in converted] == [SystemMessage, HumanMessage, AIMessage, ToolMessage, ToolMessage, AIMessage]
    assert converted[2].tool_calls[0] == {"name": "metro_hail", "id": "c1", "type": "tool_call",
                                          "args": {"start_point": "Main Street", "stops": [1, {"x": None}]}}
    assert converted[3].tool_call_id == "c1"
    assert [from_langchain(m) for m in converted] == CONVERSATION


def test_the_adapter_binds_the_tools_and_converts_the_reply():
    model = Recording(reply=AIMessage(content=[{"type": "text", "text": "Asking "}, {"type": "text", "text": "it."}],
                                      tool_calls=[{"name": "metro_hail", "args": {"start_point": "Main Street"},
                                                   "id": "p1", "type": "tool_call"}]), seen=[], bound=[])
    reply = LangChainModel(model).complete(CONVERSATION[:2], [FARE])
    assert model.bound == [[{"type": "function", "function": {"name": "metro_hail", "description": "MetroHail fares.",
                                                              "parameters": FARE.parameters}}]]
    assert [type(m) for m in model.seen[0]] == [SystemMessage, HumanMessage]
    assert reply == chat.asked(("metro_hail", {"start_point": "Main Street"}, "p1"), content="Asking it.")
    LangChainModel(model).complete(CONVERSATION[:2])
    assert len(model.bound) == 1  # no tools: nothing bound


def test_a_reply_that_is_no_valid_message_is_one_line_without_its_text():
    bad = Recording(reply=AIMessage(content="", tool_calls=[{"name": "rm -rf / # IGNORE ALL", "args": {},
                                                             "id": "x", "type": "tool_call"}]), seen=[], bound=[])
    with pytest.raises(LLMError) as info:
        LLMClient(LangChainModel(bad)).complete([chat.user("hi")])
    message = str(info.value)
    assert message.startswith("the LLM's reply is not a valid message (name: String should match pattern")
    assert "\n" not in message
    assert "IGNORE" not in message and info.value.__context__ is None


# --- the offline models: one base ------------------------------------------------------------------------------

SCRIPT = Script.model_validate({"rules": [
    {"when": {"tools_include": ["metro_hail"], "not_called": ["metro_hail"]},
     "then": {"tool_calls": [{"name": "metro_hail", "args": {"start_point": "Main Street"}}]}},
    {"when": {"called": ["metro_hail"]}, "then": {"content": "Fare: {tool:metro_hail}"}}]})
TASK = Behaviour(trigger="A fare from Main Street, please.",
                 calls=[Call(function="metro_hail", args={"start_point": "Main Street"})], answer="Fare: $51.80")


def _scripted(latency: float, tmp_path) -> ChatModel:
    script = tmp_path / "script.json"
    script.write_text(SCRIPT.model_dump_json())
    return make_chat_model(LLMConfig(provider="scripted", model="scripted", script=script,
                                     latency=LatencyModel(fixed_s=latency)))


def _worst_case(latency: float, tmp_path) -> ChatModel:
    return GroundTruthModel(tasks=[TASK], injections=[], latency=LatencyModel(fixed_s=latency))


@pytest.mark.parametrize("build, prefix", [(_scripted, "call"), (_worst_case, "gt")], ids=["scripted", "worst-case"])
def test_both_offline_models_share_the_base_and_its_behaviour(build, prefix, tmp_path):
    """The scripted model (from the configuration, as a real one) and the AgentDojo worst-case
    model: one base records every input, waits the simulated latency, and numbers its calls."""
    model = build(0.05, tmp_path)
    assert isinstance(model, OfflineModel) and isinstance(model, ChatModel)
    turn = [chat.system("You help."), chat.user("A fare from Main Street, please.")]
    started = time.monotonic()
    first = model.complete(turn, [FARE])
    assert time.monotonic() - started >= 0.05
    assert [(c.id, c.name, c.args) for c in first.tool_calls] == [(f"{prefix}_1", "metro_hail",
                                                                    {"start_point": "Main Street"})]
    done = [*turn, first, chat.result_of(first.tool_calls[0], "$51.80")]
    assert model.complete(done, [FARE]) == chat.asked(content="Fare: $51.80")
    again = model.complete(turn, [FARE])
    assert again.tool_calls[0].id == f"{prefix}_2"  # ids go on across calls
    assert model.history == [turn, done, turn]


# --- the client: counting, charging and reporting through what it is handed ----------------------------------

class _Failing(ChatModel):
    def complete(self, messages, tools=()):
        raise ConnectionError("the provider said: token sk-abcdef123456 is bad")


def test_the_client_charges_before_each_call_and_reports_to_the_audit_it_is_given():
    charged, model = [], ScriptedChatModel(SCRIPT)
    client = LLMClient(model, charge=charged.append)
    client.complete(CONVERSATION[:2], [FARE], purpose="planner")
    assert charged == [prompt_bytes(CONVERSATION[:2], [FARE])] and client.calls_by_purpose == {"planner": 1}

    def refuse(size: int) -> None:
        raise RuntimeError("over budget")
    with pytest.raises(RuntimeError, match="over budget"):
        LLMClient(model, charge=refuse).complete(CONVERSATION[:2])
    assert len(model.history) == 1  # refused before the model was asked

    class Audit:
        events: list = []

        def record(self, event, /, **fields):
            self.events.append((event, fields))
    audit = Audit()
    with pytest.raises(LLMError, match="^the LLM call failed: connection$"):
        LLMClient(_Failing(), audit=audit).model_for("memory").complete([chat.user("hi")])
    [(event, fields)] = audit.events
    assert event == "llm_error" and fields["purpose"] == "memory" and "sk-abcdef123456" not in fields["detail"]


def test_prompt_bytes_count_text_and_tool_calls():
    message = chat.asked(("metro_hail", {"start_point": "Zürich"}, "c1"), content="é")
    size = prompt_bytes([message], [FARE])
    expected_calls = len(b'[{"name": "metro_hail", "args": {"start_point": "Z\\u00fcrich"}, "id": "c1", '
                         b'"type": "tool_call"}]')
    assert size == 2 + expected_calls + len("MetroHail fares.") + len(
        '{"type": "object", "properties": {"start_point": {"type": "string"}}}')
