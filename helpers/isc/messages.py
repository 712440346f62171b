"""Runs in: hub, zygote, spoke, vanillagpt.

Every message that crosses the hub<->spoke boundary, as one typed model per kind.

Both sides validate what they receive against ``Message`` (a union discriminated
on ``type``); unknown kinds and unknown fields are rejected. No message carries
the sender's identity: the hub knows which spoke sent a message by the socket it
arrived on, so a field claiming to be another spoke is simply not accepted.

Request/response pairs carry an ``id`` chosen by the requester and echoed by the
answer, so a late answer to a request that already timed out is recognised.
"""

from __future__ import annotations

import base64
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

# Bounds that keep a hostile peer from making the receiver do unbounded work
# inside one (already size-limited) frame.
NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_]{0,63}$"
MAX_TEXT = 512 * 1024
RequestId = Annotated[int, Field(ge=0, le=2**53)]
Name = Annotated[str, Field(pattern=NAME_PATTERN)]
Text = Annotated[str, Field(max_length=MAX_TEXT)]


class _Msg(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


# --- functionality of another app (original protocol) -----------------------

class FunctionProbeRequest(_Msg):
    type: Literal["function_probe_request"] = "function_probe_request"
    id: RequestId
    functionality: Name


class FunctionProbeResponse(_Msg):
    type: Literal["function_probe_response"] = "function_probe_response"
    id: RequestId
    functionality: Name
    request_schema: dict[str, Any]


class AppRequest(_Msg):
    """Run ``functionality`` with ``request`` (hub->spoke, or spoke->hub for another app)."""

    type: Literal["app_request"] = "app_request"
    id: RequestId
    functionality: Name
    request: dict[str, Any]


class AppResponse(_Msg):
    type: Literal["app_response"] = "app_response"
    id: RequestId
    functionality: Name
    response: Any  # any JSON value; checked against the functionality's response schema by the hub


class PlanStep(_Msg):
    """One step of the planner's plan; ``input`` may reference ``<result_k>``."""

    name: Name
    input: Any = None
    output: Any = None


class DoneCall(_Msg):
    """A functionality the hub already ran for this spoke's app (strict mode), with its result."""

    name: Name
    input: Any = None
    result: Text


class QueryRequest(_Msg):
    """Handle a user query with the spoke's agent (hub->spoke). ``plan`` holds the steps the
    planner assigned to this spoke; ``expected`` the functionalities the plan foresees.
    ``results`` (strict mode): the hub ran the app's planned steps itself; the spoke only
    phrases these results for the user, with no tools (``tools`` False: no tools either, for an
    app whose only functionality is its own LLM, an annotation app)."""

    type: Literal["query_request"] = "query_request"
    id: RequestId
    query: Text
    plan: list[PlanStep] = Field(default_factory=list, max_length=64)
    expected: list[Name] = Field(default_factory=list, max_length=256)
    results: list[DoneCall] = Field(default_factory=list, max_length=64)
    tools: bool = True  # False (strict mode): answer with no tools at all


class FinalResponse(_Msg):
    """A spoke's answer to the user query it was given."""

    type: Literal["final_response"] = "final_response"
    id: RequestId
    text: Text


class NoFunctionalityResponse(_Msg):
    type: Literal["no_functionality_response"] = "no_functionality_response"
    id: RequestId
    functionality: Name


class FunctionalityDenialResponse(_Msg):
    type: Literal["functionality_denial_response"] = "functionality_denial_response"
    id: RequestId
    functionality: Name
    reason: Text


# --- brokered resources ---------------------------------------------------------

class ToolCall(_Msg):
    id: Annotated[str, Field(max_length=128)]
    name: Name
    args: dict[str, Any]


class ChatMessage(_Msg):
    role: Literal["system", "user", "assistant", "tool"]
    content: Text
    tool_calls: list[ToolCall] = Field(default_factory=list, max_length=64)
    tool_call_id: Annotated[str, Field(max_length=128)] | None = None


class ToolSpec(_Msg):
    name: Name
    description: Text
    parameters: dict[str, Any]


class LLMRequest(_Msg):
    type: Literal["llm_request"] = "llm_request"
    id: RequestId
    messages: list[ChatMessage] = Field(max_length=1024)
    tools: list[ToolSpec] = Field(default_factory=list, max_length=256)


class LLMResponse(_Msg):
    type: Literal["llm_response"] = "llm_response"
    id: RequestId
    message: ChatMessage


class MemoryRequest(_Msg):
    """Read or write the sender's own memory; the namespace is the hub's choice, never the spoke's."""

    type: Literal["memory_request"] = "memory_request"
    id: RequestId
    op: Literal["load", "save", "clear"]
    kind: Literal["history", "summary", "entities"]
    value: Any = None


class MemoryResponse(_Msg):
    type: Literal["memory_response"] = "memory_response"
    id: RequestId
    value: Any = None


HttpMethod = Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]
BodyEncoding = Literal["utf-8", "base64"]
_HTTP_METHOD: TypeAdapter[HttpMethod] = TypeAdapter(HttpMethod)


class HttpRequest(_Msg):
    type: Literal["http_request"] = "http_request"
    id: RequestId
    method: HttpMethod
    url: Annotated[str, Field(max_length=8192)]
    headers: dict[str, Annotated[str, Field(max_length=8192)]] = Field(default_factory=dict)
    body: Text | None = None
    body_encoding: BodyEncoding = "utf-8"


def http_request(request_id: int, method: str, url: str, headers: dict[str, str] | None = None,
                 body: bytes | str | None = None) -> HttpRequest:
    """An app's HTTP call as a message; bytes travel base64-encoded."""
    encoding: BodyEncoding = "utf-8"
    if isinstance(body, bytes):
        body, encoding = base64.b64encode(body).decode(), "base64"
    # App code names the method: an unknown one fails here, as it would in the model itself.
    return HttpRequest(id=request_id, method=_HTTP_METHOD.validate_python(method.upper()), url=url,
                       headers=headers or {}, body=body, body_encoding=encoding)


class HttpResponse(_Msg):
    type: Literal["http_response"] = "http_response"
    id: RequestId
    status: Annotated[int, Field(ge=100, le=599)]
    headers: dict[str, str]
    body: str
    body_encoding: BodyEncoding = "utf-8"


# --- an MCP server's tool list (installing an MCP app: helpers/tools/mcp) ------------

class McpTool(_Msg):
    """One tool as the server listed it: the vendor's text and schemas, untrusted until pinned."""

    name: Annotated[str, Field(min_length=1, max_length=128)]
    description: Text = ""
    input_schema: dict[str, Any]
    output_schema: dict[str, Any] | None = None


class McpListRequest(_Msg):
    """List the tools of the spoke's MCP server (hub->spoke, when the app is installed or checked)."""

    type: Literal["mcp_list_request"] = "mcp_list_request"
    id: RequestId


class McpListResponse(_Msg):
    type: Literal["mcp_list_response"] = "mcp_list_response"
    id: RequestId
    server: Annotated[str, Field(max_length=256)] = ""  # the name the server gives itself
    tools: Annotated[list[McpTool], Field(max_length=256)]


# --- life cycle and errors -----------------------------------------------------

class SandboxReport(_Msg):
    """What the spoke applied to itself, measured after applying it and before any app code
    ran (``helpers.sandbox.confine``). Travels only in the start protocol
    (``spoke_start.SpokeConfined``), never in a ``Message``."""

    uid: int
    gid: int
    rlimits: dict[str, int]
    seccomp: bool  # the kernel reports a filter in force (PR_GET_SECCOMP)
    landlock_abi: int  # the ABI the restrict call enforced; 0: no Landlock, the layer is missing
    mount_namespace: bool  # a mount namespace other than the zygote's
    network_namespace: bool  # a network namespace other than the zygote's
    user_namespace: bool = False  # a user namespace other than the zygote's (hub not root)
    seccomp_exceptions: list[str] = []


ErrorCode = Literal[
    "frame_too_large", "bad_json", "bad_message", "unexpected_message",
    "egress_denied", "permission_denied", "not_found", "timeout",
    "app_error", "unavailable", "rate_limited", "internal", "invalid_request", "llm_error",
]


class ErrorMessage(_Msg):
    """Something was refused or failed. ``id`` is null when the offending frame had none."""

    type: Literal["error"] = "error"
    id: RequestId | None = None
    code: ErrorCode
    message: Text


Message = Annotated[
    FunctionProbeRequest | FunctionProbeResponse | AppRequest | AppResponse | QueryRequest | FinalResponse
    | NoFunctionalityResponse | FunctionalityDenialResponse | LLMRequest | LLMResponse | MemoryRequest
    | MemoryResponse | HttpRequest | HttpResponse | McpListRequest | McpListResponse | ErrorMessage,
    Field(discriminator="type"),
]

MESSAGE_TYPES: tuple[str, ...] = (
    "function_probe_request", "function_probe_response", "app_request", "app_response",
    "query_request", "final_response", "no_functionality_response", "functionality_denial_response",
    "llm_request", "llm_response", "memory_request", "memory_response",
    "http_request", "http_response", "mcp_list_request", "mcp_list_response", "error",
)  # a spoke's start (confine, spoke_confined, load_app, spoke_ready) is in spoke_start.py

_ADAPTER: TypeAdapter[Message] = TypeAdapter(Message)


class MessageError(ValueError):
    """A frame that is not a valid message. ``code`` is the error code to answer with."""

    def __init__(self, code: ErrorCode, detail: str) -> None:
        super().__init__(detail)
        self.code: ErrorCode = code


def parse_message(payload: bytes) -> Message:
    """Validate one frame's payload. Raises MessageError and nothing else."""
    try:
        return _ADAPTER.validate_json(payload)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        first = errors[0] if errors else {"type": "?", "msg": "invalid", "loc": ()}
        code: ErrorCode = "bad_json" if first["type"] == "json_invalid" else "bad_message"
        where = ".".join(str(p) for p in first.get("loc", ())) or "message"
        raise MessageError(code, f"{where}: {first['msg']}"[:500]) from exc
    except (RecursionError, MemoryError, UnicodeError) as exc:  # pragma: no cover - defensive
        raise MessageError("bad_json", f"unparseable frame ({type(exc).__name__})") from exc


def dump_message(message: Message) -> bytes:
    return message.model_dump_json().encode("utf-8")
