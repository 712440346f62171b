"""Every built-in functionality runs inside its own spoke against its specification;
Gmail and Drive go through google-api-python-client and the hub's egress, answered
offline by the simulated account or by recorded Google responses."""

from __future__ import annotations

import json

import httpx
import jsonschema
import pytest

from helpers.isc.messages import AppResponse
from helpers.sandbox.http_broker import HttpBroker
from helpers.tools.google.authorize import store_token
from helpers.tools.google.local_api import LocalGoogleAccount, LocalGoogleAPI
from helpers.tools.tool_importer import ToolImporter
from hub.audit import AuditLog
from hub.broker import SpokeBroker
from tests.catalogues import CATALOGUE, SAMPLES
from tests.http_helpers import echo_network, public_resolver


@pytest.fixture
def account(data_dir) -> LocalGoogleAccount:
    account = LocalGoogleAccount(data_dir / "google_local")
    account.add_email("billing@shop.example", "me@example.com", "Your invoice", "Please pay by Friday.")
    account.add_email("bob@example.com", "me@example.com", "Lunch?", "Lunch at noon?")
    account.add_document("budget.txt", "Q3 budget: 1200 dollars")
    (data_dir / "app_settings.json").write_text(json.dumps(
        {"requests_all": {"allowed_domains": "example.org"}}))
    return account


@pytest.fixture
def catalogue_broker(launcher, data_dir, account):
    http = HttpBroker(transport=httpx.MockTransport(echo_network), local_google=LocalGoogleAPI(account),
                      resolver=public_resolver)
    broker = SpokeBroker(launcher, AuditLog(data_dir / "audit.jsonl"), http)
    yield ToolImporter(CATALOGUE), broker
    broker.close()


def test_every_functionality_has_a_sample():
    assert set(SAMPLES) == set(ToolImporter(CATALOGUE).all_functionalities()) - {"creative_muse", "symptom_solver"}


def test_every_functionality_in_its_spoke(catalogue_broker, account):
    importer, broker = catalogue_broker
    spokes = {}
    for name, (request, expected) in SAMPLES.items():
        f = importer.functionality(name)
        jsonschema.validate(request, f.request_schema)
        if f.app not in spokes:
            spokes[f.app] = broker.start(importer.app_spec(f.app))
        outcome = broker.call(spokes[f.app], name, request)
        assert isinstance(outcome, AppResponse), f"{name}: {outcome}"
        jsonschema.validate(outcome.response, f.response_schema)
        assert expected in outcome.response, f"{name}: {outcome.response}"
    assert account.outbox()[0]["to"] == ["bob@example.com"] and account.outbox()[0]["body"].strip() == "Hello Bob"
    assert [m["id"] for m in account.load("mailbox")] == ["m0001"]
    assert account.load("drafts")[0]["subject"] == "Later"
    assert len({s.process.pid for s in spokes.values()}) == len(spokes)  # one spoke per app


def test_requests_outside_allowed_domains_is_a_refusal(catalogue_broker):
    importer, broker = catalogue_broker
    spoke = broker.start(importer.app_spec("requests_all"))
    for url in ("https://example.org.attacker.net/", "https://127.0.0.1/", "https://examp1e.org/"):
        outcome = broker.call(spoke, "requests_get", {"url": url})
        assert outcome.response.startswith("Request refused by SecGPT"), url


# --- the real Google backend, offline: recorded responses instead of Google -------------------------

TOKEN = {"token": "stale", "refresh_token": "1//refresh", "client_id": "client.apps.googleusercontent.com",
         "client_secret": "secret", "token_uri": "https://oauth2.googleapis.com/token",
         "scopes": ["https://mail.google.com/"], "expiry": "2020-01-01T00:00:00Z"}
RECORDED_LIST = {"messages": [{"id": "18c1", "threadId": "18c1"}], "resultSizeEstimate": 1}
RECORDED_MESSAGE = {
    "id": "18c1", "threadId": "18c1", "labelIds": ["INBOX"], "snippet": "The quarterly report is attached",
    "internalDate": "1700000000000",
    "payload": {"mimeType": "text/plain", "headers": [
        {"name": "From", "value": "Carol <carol@example.com>"}, {"name": "To", "value": "me@example.com"},
        {"name": "Subject", "value": "Quarterly report"}, {"name": "Date", "value": "Tue, 14 Nov 2023 10:00:00 +0000"}],
        "body": {"size": 33, "data": "VGhlIHF1YXJ0ZXJseSByZXBvcnQgaXMgYXR0YWNoZWQ"}}}


class RecordedGoogle:
    def __init__(self, refresh_ok: bool) -> None:
        self.refresh_ok = refresh_ok
        self.seen: list[tuple[str, str, str]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append((request.method, str(request.url), request.headers.get("authorization", "")))
        if request.url.host == "oauth2.googleapis.com":
            if not self.refresh_ok:
                return httpx.Response(400, json={"error": "invalid_grant",
                                                 "error_description": "Token has been expired or revoked."})
            return httpx.Response(200, json={"access_token": "ya29.fresh", "expires_in": 3600, "token_type": "Bearer"})
        if request.headers.get("authorization") != "Bearer ya29.fresh":
            return httpx.Response(401, json={"error": {"code": 401, "message": "Invalid Credentials"}})
        if request.url.path == "/gmail/v1/users/me/messages":
            return httpx.Response(200, json=RECORDED_LIST)
        if request.url.path == "/gmail/v1/users/me/messages/18c1":
            return httpx.Response(200, json=RECORDED_MESSAGE)
        return httpx.Response(404, json={"error": {"code": 404, "message": "not recorded"}})


def _google_broker(launcher, data_dir, recorded):
    (data_dir / "app_settings.json").write_text(json.dumps({"gmail": {"backend": "google"}}))
    store_token("gmail", json.dumps(TOKEN))
    http = HttpBroker(transport=httpx.MockTransport(recorded), resolver=public_resolver)
    broker = SpokeBroker(launcher, AuditLog(data_dir / "audit.jsonl"), http)
    return ToolImporter(CATALOGUE), broker


def test_real_gmail_client_through_hub_egress(launcher, data_dir):
    recorded = RecordedGoogle(refresh_ok=True)
    importer, broker = _google_broker(launcher, data_dir, recorded)
    try:
        spoke = broker.start(importer.app_spec("gmail"))
        outcome = broker.call(spoke, "search_gmail", {"query": "report"})
        assert "Quarterly report" in outcome.response and "carol@example.com" in outcome.response
        methods = [(m, u.split("?")[0]) for m, u, _ in recorded.seen]
        assert methods[0] == ("POST", "https://oauth2.googleapis.com/token")  # token refreshed first, via the hub
        assert ("GET", "https://gmail.googleapis.com/gmail/v1/users/me/messages") in methods
        assert all(auth == "Bearer ya29.fresh" for m, u, auth in recorded.seen[1:])
    finally:
        broker.close()


def test_refresh_failure_asks_to_reauthorise(launcher, data_dir):
    importer, broker = _google_broker(launcher, data_dir, RecordedGoogle(refresh_ok=False))
    try:
        spoke = broker.start(importer.app_spec("gmail"))
        outcome = broker.call(spoke, "search_gmail", {"query": "report"})
        assert "python -m helpers.tools.google.authorize gmail" in outcome.response
    finally:
        broker.close()


def test_token_is_private_to_the_app(launcher, data_dir):
    import os

    from hub.broker import SpokeBroker as Broker
    from tests.sandbox_helpers import sandbox_code
    path = store_token("gmail", json.dumps(TOKEN))
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    broker = Broker(launcher, AuditLog(None))
    try:
        outcome = sandbox_code(broker, f"print(open({path!r}).read())", name="curious_app")
        assert outcome.response["error_type"] in ("PermissionError", "FileNotFoundError")
    finally:
        broker.close()
