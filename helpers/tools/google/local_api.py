"""Runs in: hub, vanillagpt.

A simulated Google account, served by the hub in place of Google's hosts.

The offline backend of the Gmail and Drive apps: the same app code and the same
google-api-python-client requests, answered from files on disk instead of the
network (data/google_local/): a mailbox, an outbox of sent mail, drafts, and a
folder of Drive documents. Runs in the hub (trusted); apps reach it only through
``http_request`` and the egress check, exactly as they would reach Google.
"""

from __future__ import annotations

import base64
import email
import email.policy
import json
import re
import threading
import time
from datetime import datetime, timezone
from email.utils import format_datetime, getaddresses
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx

from helpers.configs import paths

HOSTS = ("gmail.googleapis.com", "www.googleapis.com")
GMAIL = re.compile(r"^/gmail/v1/users/me/(messages|threads|drafts)(?:/([^/]+))?(?:/(send|trash))?$")
DRIVE = re.compile(r"^/drive/v3/files(?:/([^/]+))?(/export)?$")


# Which part of the simulated account each Google API may touch (an app's `google_api` setting),
# as a real OAuth token's scopes would limit it.
SCOPES = {"gmail": ("gmail.googleapis.com", "/gmail/"), "drive": ("www.googleapis.com", "/drive/")}


def is_google_host(url: str) -> bool:
    return urlsplit(url).hostname in HOSTS


def in_scope(url: str, api: str) -> bool:
    parts = urlsplit(url)
    host, prefix = SCOPES.get(api, ("", "/nothing/"))
    return parts.hostname == host and parts.path.startswith(prefix)


def default_root() -> Path:
    return paths.data_dir() / "google_local"


def _b64(text: bytes) -> str:
    return base64.urlsafe_b64encode(text).decode().rstrip("=")


class LocalGoogleAccount:
    """The simulated account's files. Also used by case studies to seed fixtures and read results."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root or default_root())
        self._lock = threading.Lock()

    def _file(self, name: str) -> Path:
        return self.root / "gmail" / f"{name}.json"

    def load(self, name: str) -> list[dict]:
        try:
            return json.loads(self._file(name).read_text())
        except FileNotFoundError:
            return []

    def save(self, name: str, items: list[dict]) -> None:
        path = self._file(name)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(items, indent=2))
        tmp.replace(path)

    def add_email(self, sender: str, to: str, subject: str, body: str, date: str | None = None,
                  labels: tuple[str, ...] = ("INBOX",)) -> str:
        with self._lock:
            mailbox = self.load("mailbox")
            number = len(mailbox) + len(self.load("outbox")) + 1
            mailbox.append({"id": f"m{number:04d}", "threadId": f"t{number:04d}", "from": sender, "to": to,
                            "subject": subject, "body": body, "labels": list(labels),
                            "date": date or format_datetime(datetime.now(timezone.utc)),
                            "internalDate": str(int(time.time() * 1000) + number)})
            self.save("mailbox", mailbox)
            return mailbox[-1]["id"]

    def add_document(self, name: str, text: str) -> None:
        folder = self.root / "drive"
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        (folder / name).write_text(text)

    def outbox(self) -> list[dict]:
        return self.load("outbox")


class LocalGoogleAPI:
    """Answers Gmail v1 and Drive v3 requests (the subset the apps use) from a LocalGoogleAccount."""

    def __init__(self, account: LocalGoogleAccount | None = None) -> None:
        self.account = account or LocalGoogleAccount()

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        url = urlsplit(str(request.url))
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        with self.account._lock:
            if url.hostname == "gmail.googleapis.com" and (m := GMAIL.match(url.path)):
                return self._gmail(request.method, *m.groups(), query, request.content)
            if url.hostname == "www.googleapis.com" and (m := DRIVE.match(url.path)):
                return self._drive(m.group(1), bool(m.group(2)), query)
        return _error(404, f"the offline Google account does not offer {request.method} {url.path}")

    # --- Gmail --------------------------------------------------------------------------------------
    def _gmail(self, method: str, kind: str, ident: str | None, action: str | None, query: dict,
               body: bytes) -> httpx.Response:
        mailbox = self.account.load("mailbox")
        if ident == "send" and action is None:
            ident, action = None, "send"
        if kind == "messages" and method == "GET" and ident is None:
            found = self._search(mailbox, query.get("q", ""))[: int(query.get("maxResults", 100))]
            return _json({"messages": [{"id": m["id"], "threadId": m["threadId"]} for m in found],
                          "resultSizeEstimate": len(found)})
        if kind == "threads" and method == "GET" and ident is None:
            found = self._search(mailbox, query.get("q", ""))[: int(query.get("maxResults", 100))]
            return _json({"threads": [{"id": m["threadId"], "snippet": m["body"][:100]} for m in found]})
        if kind == "messages" and method == "GET":
            message = next((m for m in mailbox if m["id"] == ident), None)
            return _json(self._resource(message)) if message else _error(404, "Requested entity was not found.")
        if kind == "threads" and method == "GET":
            members = [self._resource(m) for m in mailbox if m["threadId"] == ident]
            if not members:
                return _error(404, "Requested entity was not found.")
            return _json({"id": ident, "messages": members})
        if kind == "messages" and action == "send" and method == "POST":
            sent = self._parse_raw(json.loads(body or b"{}").get("raw", ""))
            outbox = self.account.load("outbox")
            sent["id"] = f"s{len(outbox) + 1:04d}"
            outbox.append(sent)
            self.account.save("outbox", outbox)
            return _json({"id": sent["id"], "threadId": sent["id"], "labelIds": ["SENT"]})
        if kind == "drafts" and method == "POST":
            draft = self._parse_raw(json.loads(body or b"{}").get("message", {}).get("raw", ""))
            drafts = self.account.load("drafts")
            draft["id"] = f"d{len(drafts) + 1:04d}"
            drafts.append(draft)
            self.account.save("drafts", drafts)
            return _json({"id": draft["id"], "message": {"id": draft["id"]}})
        if kind == "messages" and ident and (method == "DELETE" or action == "trash"):
            kept = [m for m in mailbox if m["id"] != ident]
            if len(kept) == len(mailbox):
                return _error(404, "Requested entity was not found.")
            self.account.save("mailbox", kept)
            deleted = self.account.load("deleted")
            self.account.save("deleted", deleted + [m for m in mailbox if m["id"] == ident])
            return httpx.Response(204) if method == "DELETE" else _json({"id": ident, "labelIds": ["TRASH"]})
        return _error(400, f"unsupported Gmail request {method} {kind}")

    @staticmethod
    def _search(mailbox: list[dict], q: str) -> list[dict]:
        words = [w.lower() for w in re.findall(r'"[^"]+"|\S+', q)]
        fields = {"from": "from", "to": "to", "subject": "subject"}

        def matches(m: dict) -> bool:
            text = " ".join((m["from"], m["to"], m["subject"], m["body"])).lower()
            for w in words:
                key, _, value = w.partition(":")
                if value and key in fields:
                    if value.strip('"') not in m[fields[key]].lower():
                        return False
                elif value and key in ("in", "is", "label"):
                    if value.upper() not in m["labels"] and value not in ("anywhere", "read", "unread"):
                        return False
                elif value:
                    continue  # date and other operators: not simulated, treated as true
                elif w.strip('"') not in text:
                    return False
            return True
        return sorted((m for m in mailbox if matches(m)), key=lambda m: int(m["internalDate"]), reverse=True)

    @staticmethod
    def _resource(m: dict) -> dict:
        headers = [{"name": "From", "value": m["from"]}, {"name": "To", "value": m["to"]},
                   {"name": "Subject", "value": m["subject"]}, {"name": "Date", "value": m["date"]}]
        return {"id": m["id"], "threadId": m["threadId"], "labelIds": m["labels"], "snippet": m["body"][:100],
                "internalDate": m["internalDate"],
                "payload": {"mimeType": "text/plain", "headers": headers,
                            "body": {"size": len(m["body"]), "data": _b64(m["body"].encode())}}}

    @staticmethod
    def _parse_raw(raw: str) -> dict:
        message = email.message_from_bytes(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)),
                                           policy=email.policy.default)
        body = message.get_body(("plain",))
        addresses = lambda field: [a for _, a in getaddresses(message.get_all(field, []))]  # noqa: E731
        return {"to": addresses("To"), "cc": addresses("Cc"), "bcc": addresses("Bcc"),
                "subject": str(message.get("Subject", "")), "body": body.get_content() if body else ""}

    # --- Drive ---------------------------------------------------------------------------------------------
    def _drive(self, file_id: str | None, export: bool, query: dict) -> httpx.Response:
        folder = self.account.root / "drive"
        files = sorted(p for p in folder.glob("*") if p.is_file()) if folder.is_dir() else []
        if file_id is None:
            wanted = re.findall(r"fullText contains '((?:[^'\\]|\\.)*)'", query.get("q", ""))
            words = [w.replace("\\'", "'").lower() for w in wanted]
            found = [p for p in files if all(w in (p.name + " " + p.read_text(errors="replace")).lower()
                                             for w in words)][: int(query.get("pageSize", 100))]
            return _json({"files": [{"id": p.name, "name": p.name, "mimeType": "text/plain"} for p in found]})
        match = next((p for p in files if p.name == file_id), None)
        if match is None:
            return _error(404, f"File not found: {file_id}.")
        if export or query.get("alt") == "media":
            return httpx.Response(200, content=match.read_bytes(), headers={"content-type": "text/plain"})
        return _json({"id": match.name, "name": match.name, "mimeType": "text/plain"})


def _json(payload: dict) -> httpx.Response:
    return httpx.Response(200, json=payload)


def _error(status: int, message: str) -> httpx.Response:
    return httpx.Response(status, json={"error": {"code": status, "message": message, "status": "ERROR"}})
