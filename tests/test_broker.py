"""The hub's broker: sender identity by socket, deadlines, crashes, egress, the audit
log, and fuzzing with arbitrary bytes written by a real spoke."""

from __future__ import annotations

import http.server
import threading

import httpx
import pytest
from hypothesis import given, settings, strategies as st

from helpers.isc.messages import AppResponse, ErrorMessage, HttpRequest
from helpers.sandbox.app_spec import AppSpec
from helpers.sandbox.http_broker import HttpBroker
from helpers.sandbox.sandbox import SANDBOX_APP
from hub.audit import read_audit
from tests.http_helpers import PUBLIC_ADDRESS, QuietHandler, public_resolver, resolving_to
from tests.sandbox_helpers import sandbox_code


def test_normal_call(hub):
    outcome = sandbox_code(hub, "print(6 * 7)")
    assert isinstance(outcome, AppResponse) and outcome.response["stdout"] == "42\n"


def test_unknown_functionality_is_a_result(hub):
    spoke = hub.start(AppSpec(name="sandbox", module=SANDBOX_APP.module))
    outcome = hub.call(spoke, "no_such_thing", {})
    assert outcome.type == "no_functionality_response"
    assert hub.call(spoke, "run_code", {"code": "print(1)"}).response["stdout"] == "1\n"


def test_app_exception_is_reported_and_spoke_survives(hub, launcher):
    spoke = hub.start(AppSpec(name="sandbox", module=SANDBOX_APP.module))
    outcome = hub.call(spoke, "run_code", {"code": 123})
    assert isinstance(outcome, ErrorMessage) and outcome.code == "app_error" and "TypeError" in outcome.message
    assert spoke.alive


def test_broken_app_module_fails_to_start_cleanly(hub):
    from helpers.utilities.errors import SpokeError
    with pytest.raises(SpokeError, match="failed to load"):
        hub.start(AppSpec(name="broken", module="helpers.no_such_module"))
    assert sandbox_code(hub, "print('ok')").response["stdout"] == "ok\n"


def test_hung_spoke_is_killed_and_reported(hub):
    spoke = hub.start(AppSpec(name="sandbox", module=SANDBOX_APP.module))
    outcome = hub.call(spoke, "run_code", {"code": "import time; time.sleep(60)"}, timeout=0.5)
    assert outcome.code == "timeout" and not spoke.alive
    again = hub.call(spoke, "run_code", {"code": "print(1)"})
    assert again.code == "unavailable" and "no answer" in again.message


def test_crash_is_reported_with_exit_status(hub):
    outcome = sandbox_code(hub, "import os; os._exit(7)")
    assert outcome.code == "app_error" and "exited with status 7" in outcome.message


def test_sender_is_known_by_socket_not_by_claims(hub):
    """A spoke answering with another spoke's request id is not taken for that spoke."""
    a = hub.start(AppSpec(name="app_a", module=SANDBOX_APP.module))
    b = hub.start(AppSpec(name="app_b", module=SANDBOX_APP.module))
    forge = ("import json, struct, os\n"
             "msg = json.dumps({'type': 'app_response', 'id': %d, 'functionality': 'run_code',"
             " 'response': {'stdout': 'forged by a'}}).encode()\n"
             "os.write(3, struct.pack('>I', len(msg)) + msg)\nprint('a done')")
    # In a fresh hub a's call gets request id 1 and b's id 2: a forges b's answer first.
    outcome_a = hub.call(a, "run_code", {"code": forge % 2})
    outcome_b = hub.call(b, "run_code", {"code": "print('b real')"})
    assert outcome_a.response["stdout"] == "a done\n"
    assert outcome_b.response["stdout"] == "b real\n"
    violations = [e for e in read_audit(hub.audit.path) if e["event"] == "violation"]
    assert violations and violations[0]["app"] == "app_a"


def test_a_call_back_into_a_busy_spoke_is_refused(hub):
    """The broker's own guard, under the hub operator's (tests/test_reentrancy.py): a spoke
    serves one request at a time. Here the broker is wired to pass an app_request on to the
    spoke that sent it; the spoke, still serving its call, is not sent a second one."""
    spoke = hub.start(AppSpec(name="sandbox", module=SANDBOX_APP.module))

    def pass_on(handle, request):
        return hub.call(handle, request.functionality, request.request).model_copy(update={"id": request.id})
    hub.handlers["app_request"] = pass_on
    code = ("from helpers.isc.messages import AppRequest\n"
            "r = hub.request(AppRequest(id=hub.next_id(), functionality='run_code', request={'code': 'print(1)'}))\n"
            "print(r.type, r.code, r.message)")
    outcome = hub.call(spoke, "run_code", {"code": code})
    assert outcome.response["stdout"] == "error unavailable sandbox is already busy in this call chain\n"
    assert [e["message"]["type"] for e in read_audit(hub.audit.path) if e["event"] == "to_spoke"] == [
        "app_request", "error"]  # the call, then the refusal: never a second app_request
    assert hub.call(spoke, "run_code", {"code": "print('free again')"}).response["stdout"] == "free again\n"


@pytest.fixture
def local_server():
    class Handler(QuietHandler):
        def do_GET(self):  # noqa: N802
            self.send_json(200, {"path": self.path})

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_egress_allowed_host_is_fetched_by_the_hub(hub, local_server):
    code = f"r = hub.http('GET', '{local_server}/hello'); print(r.status, r.body)"
    outcome = sandbox_code(hub, code, allowed_domains=frozenset({local_server.split("//")[1]}))  # 127.0.0.1:PORT
    assert outcome.response["stdout"] == '200 {"path": "/hello"}\n'
    egress = [e for e in read_audit(hub.audit.path) if e["event"] == "egress"]
    assert egress[-1]["allowed"] is True


def test_egress_is_per_app(hub, local_server):
    code = f"r = hub.http('GET', '{local_server}/x'); print(r.type, getattr(r, 'code', ''))"
    outcome = sandbox_code(hub, code, allowed_domains=frozenset({"google.com"}))
    assert outcome.response["stdout"] == "error egress_denied\n"


def test_audit_log_records_both_directions(hub):
    sandbox_code(hub, "print('audited')")
    events = read_audit(hub.audit.path)
    kinds = [e["event"] for e in events]
    assert "spoke_started" in kinds and "to_spoke" in kinds and "from_spoke" in kinds
    assert any(e["event"] == "from_spoke" and e["message"]["type"] == "app_response" for e in events)
    started = next(e for e in events if e["event"] == "spoke_started")
    assert started["sandbox"]["seccomp"] is True


@settings(max_examples=40)
@given(st.binary(max_size=600), st.booleans())
def test_fuzz_hub_with_bytes_from_a_spoke(hub, data, as_frame):
    """Whatever a spoke writes, the hub answers with a typed outcome and keeps serving."""
    payload = (len(data).to_bytes(4, "big") + data) if as_frame else data
    outcome = sandbox_code(hub, f"import os\nos.write(3, {payload!r})\nos._exit(0)", timeout=5.0)
    assert outcome.type in ("app_response", "error", "final_response", "no_functionality_response",
                            "functionality_denial_response")
    assert sandbox_code(hub, "print('alive')").response["stdout"] == "alive\n"


def test_oversized_answer_is_an_error_not_a_crash(hub):
    """An answer the hub cannot fit in one frame (a body that JSON escaping makes > 1 MiB)
    is replaced by an error for the spoke; the hub keeps serving."""
    from helpers.isc.messages import HttpResponse
    spoke = hub.start(AppSpec(name="sandbox", module=SANDBOX_APP.module))
    assert hub._send(spoke, HttpResponse(id=7, status=200, headers={}, body="\x01" * 300_000)) is None
    sent = [e for e in read_audit(hub.audit.path) if e["event"] == "to_spoke"][-1]["message"]
    assert sent["type"] == "error" and sent["code"] == "frame_too_large" and sent["id"] == 7
    assert sandbox_code(hub, "print('alive')").response["stdout"] == "alive\n"


@pytest.mark.parametrize("address,refused", [("10.0.0.5", True), ("127.0.0.1", True), ("169.254.169.254", True),
                                             ("fd00::1", True), ("::1", True), (PUBLIC_ADDRESS, False)])
def test_names_resolving_to_private_addresses_are_refused(address, refused):
    """An allowed name that points inside (SSRF, DNS rebinding) is refused before connecting."""
    broker = HttpBroker(resolver=resolving_to(address))
    url = "https://internal.example.com/"
    try:
        assert (broker.resolve(url, frozenset())[1] is not None) is refused
        assert broker.resolve(url, frozenset({"internal.example.com"})) == ((address,), None)  # listed exactly
    finally:
        broker.close()


@pytest.mark.parametrize("address", ["127.0.0.1", "10.1.2.3"])
def test_a_replaced_transport_keeps_the_address_check(address):
    """Recorded responses stand in for the network, not for the check: a name pointing inside
    is refused before the transport sees the request; the control, the same name pointing at a
    public address, is served through it."""
    served: list[str] = []

    def network(request: httpx.Request) -> httpx.Response:
        served.append(str(request.url))
        return httpx.Response(200, text="answered")
    request = HttpRequest(id=1, method="GET", url="https://internal.example.com/")
    for resolver in (resolving_to(address), public_resolver):
        broker = HttpBroker(transport=httpx.MockTransport(network), resolver=resolver)
        try:
            decision, reply = broker.serve("app", request, frozenset({"example.com"}), {})
        finally:
            broker.close()
        assert decision.allowed
        if resolver is public_resolver:
            assert reply.type == "http_response" and reply.body == "answered"
        else:
            assert reply.type == "error" and reply.code == "egress_denied" and address in reply.message
            assert served == []
    assert served == ["https://internal.example.com/"]


def test_a_resolver_that_returns_no_address_is_a_refusal():
    """What the resolver returns is checked, not trusted: a host name where an address belongs
    refuses the request (an uncaught ValueError before); the control, a real address, is used."""
    for answer, refused in (("internal.example.com", True), (PUBLIC_ADDRESS, False)):
        broker = HttpBroker(resolver=resolving_to(answer))
        try:
            addresses, reason = broker.resolve("https://api.example.com/", frozenset())
        finally:
            broker.close()
        assert (reason is not None) is refused, reason
        assert addresses == (() if refused else (answer,))


def test_a_real_transport_cannot_stand_in_for_the_network():
    """A transport that reaches the network would look the name up again after the check."""
    with pytest.raises(ValueError, match="must not reach it"):
        HttpBroker(transport=httpx.HTTPTransport())
    HttpBroker(transport=httpx.MockTransport(lambda request: httpx.Response(200))).close()  # the control
