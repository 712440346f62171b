"""Typed messages and framing: valid messages round-trip; anything else is a
MessageError or a FrameTooLarge, never another exception (fuzzed)."""

from __future__ import annotations

import json
import socket
import typing

import pytest
from hypothesis import given, strategies as st

from helpers.isc import messages as m
from helpers.isc.channel import Channel, ChannelClosed, Violation
from helpers.isc.framing import HEADER, FrameDecoder, FrameTooLarge, encode_frame

EXAMPLES: list[m.Message] = [
    m.FunctionProbeRequest(id=1, functionality="quick_ride"),
    m.FunctionProbeResponse(id=1, functionality="quick_ride", request_schema={"type": "object"}),
    m.AppRequest(id=2, functionality="quick_ride", request={"start": "a", "end": "b"}),
    m.AppResponse(id=2, functionality="quick_ride", response={"fare": 57.0}),
    m.QueryRequest(id=3, query="fares?", plan=[m.PlanStep(name="quick_ride", input={"a": "<result_1>"})],
                   expected=["quick_ride"]),
    m.FinalResponse(id=3, text="done"),
    m.NoFunctionalityResponse(id=4, functionality="nope"),
    m.FunctionalityDenialResponse(id=5, functionality="send_gmail_message", reason="user refused"),
    m.LLMRequest(id=6, messages=[m.ChatMessage(role="user", content="hi")],
                 tools=[m.ToolSpec(name="t", description="d", parameters={"type": "object"})]),
    m.LLMResponse(id=6, message=m.ChatMessage(role="assistant", content="",
                                              tool_calls=[m.ToolCall(id="c1", name="t", args={})])),
    m.MemoryRequest(id=7, op="load", kind="history"),
    m.MemoryResponse(id=7, value=[{"role": "user", "content": "x"}]),
    m.HttpRequest(id=8, method="GET", url="https://example.com/"),
    m.HttpResponse(id=8, status=200, headers={"content-type": "text/plain"}, body="ok"),
    m.McpListRequest(id=9),
    m.McpListResponse(id=9, server="mcp-time", tools=[m.McpTool(name="get-time", description="d",
                                                               input_schema={"type": "object"})]),
    m.ErrorMessage(id=None, code="bad_json", message="x"),
]


def test_every_kind_has_an_example():
    kinds = {e.type for e in EXAMPLES}
    assert kinds == set(m.MESSAGE_TYPES)
    union_members = typing.get_args(typing.get_args(m.Message)[0])
    assert {cls.model_fields["type"].default for cls in union_members} == set(m.MESSAGE_TYPES)


@pytest.mark.parametrize("message", EXAMPLES, ids=[e.type for e in EXAMPLES])
def test_round_trip(message):
    assert m.parse_message(m.dump_message(message)) == message


REJECTED = {
    "not json": (b"{nope", "bad_json"),
    "not an object": (b"[1, 2]", "bad_message"),
    "unknown kind": (b'{"type": "launch", "id": 1}', "bad_message"),
    "no kind": (b'{"id": 1}', "bad_message"),
    "extra field (sender claim)": (b'{"type": "final_response", "id": 1, "text": "x", "spoke_id": "b"}',
                                   "bad_message"),
    "wrong type": (b'{"type": "final_response", "id": "1", "text": "x"}', "bad_message"),
    "negative id": (b'{"type": "final_response", "id": -1, "text": "x"}', "bad_message"),
    "bad app name": (b'{"type": "function_probe_request", "id": 1, "functionality": "../etc"}',
                     "bad_message"),
    "bad utf-8": (b'{"type": "final_response", "id": 1, "text": "\xff"}', "bad_json"),
    "deep nesting": (b'{"type": "app_request", "id": 1, "functionality": "a", "request": '
                     + b'{"a":' * 5000 + b"1" + b"}" * 5000 + b"}", None),
}


@pytest.mark.parametrize("case", sorted(REJECTED))
def test_rejected(case):
    payload, code = REJECTED[case]
    with pytest.raises(m.MessageError) as info:
        m.parse_message(payload)
    if code:
        assert info.value.code == code


@given(st.binary(max_size=2048))
def test_parse_never_raises_anything_else(payload):
    try:
        m.parse_message(payload)
    except m.MessageError:
        pass


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
                           | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)


@given(st.sampled_from(m.MESSAGE_TYPES), st.dictionaries(
    st.sampled_from(["id", "functionality", "request", "response", "text", "messages", "url", "method",
                     "code", "message", "op", "kind", "value", "status", "headers", "body", "x"]),
    json_values, max_size=6))
def test_near_valid_messages_never_crash(kind, fields):
    payload = json.dumps({"type": kind, **fields}).encode()
    try:
        parsed = m.parse_message(payload)
        assert parsed.type == kind
    except m.MessageError:
        pass


# --- framing ---------------------------------------------------------------------------------

def test_frames_survive_any_split():
    stream = b"".join(encode_frame(p) for p in (b"a", b"", b"hello world", b"x" * 300))
    for cut in range(len(stream) + 1):
        decoder = FrameDecoder()
        out = decoder.feed(stream[:cut]) + decoder.feed(stream[cut:])
        assert out == [b"a", b"", b"hello world", b"x" * 300]


def test_oversized_frame_is_skipped_and_stream_stays_in_sync():
    decoder = FrameDecoder(max_frame=10)
    stream = HEADER.pack(50) + b"y" * 50 + encode_frame(b"after", 10)
    out = []
    for i in range(0, len(stream), 7):
        out += decoder.feed(stream[i:i + 7])
    assert isinstance(out[0], FrameTooLarge) and out[0].size == 50 and out[1:] == [b"after"]


def test_encode_refuses_oversized():
    with pytest.raises(FrameTooLarge):
        encode_frame(b"x" * 11, max_frame=10)


@given(st.lists(st.binary(max_size=64), max_size=20), st.integers(min_value=1, max_value=64))
def test_decoder_output_independent_of_chunking(payloads, chunk):
    stream = b"".join(encode_frame(p) for p in payloads)
    decoder = FrameDecoder()
    out = []
    for i in range(0, len(stream), chunk):
        out += decoder.feed(stream[i:i + chunk])
    assert out == payloads and not decoder.mid_frame


@given(st.binary(max_size=4096))
def test_decoder_never_raises_and_bounds_memory(data):
    decoder = FrameDecoder(max_frame=256)
    for item in decoder.feed(data):
        assert isinstance(item, FrameTooLarge) or len(item) <= 256
    assert len(decoder._buf) <= 256 + HEADER.size


@given(st.binary(max_size=4096))
def test_channel_turns_garbage_into_violations(data):
    a, b = socket.socketpair()
    try:
        channel = Channel(a, max_frame=512)
        b.sendall(data)
        b.close()
        while True:
            try:
                item = channel.recv()
            except ChannelClosed:
                break
            assert isinstance(item, Violation) or item.type in m.MESSAGE_TYPES
    finally:
        a.close()
