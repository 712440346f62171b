"""Runs in: spoke, vanillagpt (app code: in its own spoke, or in VanillaGPT's one process).

Gmail functionalities, on the Gmail API through the hub (google-api-python-client).

Runs in the gmail app's spoke (or in VanillaGPT's process). The same code serves
the real Gmail account (backend ``google``) and the simulated offline account
(backend ``local``): the hub decides where Google's hosts are answered from.
"""

from __future__ import annotations

import base64
from email.message import EmailMessage

from helpers.tools.google.client import build_service, run_google

SCOPES = ["https://mail.google.com/"]
MAX_BODY = 2000


def _service(hub):
    return build_service("gmail", "v1", hub, SCOPES).users()


def _headers(message: dict) -> dict[str, str]:
    return {h["name"].lower(): h["value"] for h in message.get("payload", {}).get("headers", [])}


def _body(payload: dict) -> str:
    data = payload.get("body", {}).get("data")
    if data:
        return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4)).decode(errors="replace")
    for part in payload.get("parts", []) or []:
        if part.get("mimeType", "").startswith("text/plain") or part.get("parts"):
            text = _body(part)
            if text:
                return text
    return ""


def _describe(message: dict, full: bool) -> str:
    h = _headers(message)
    text = (f"Id: {message['id']} | Thread: {message.get('threadId', '')} | From: {h.get('from', '')} | "
            f"To: {h.get('to', '')} | Date: {h.get('date', '')} | Subject: {h.get('subject', '')}")
    if full:
        return f"{text}\n{_body(message.get('payload', {}))[:MAX_BODY]}"
    return f"{text} | {message.get('snippet', '')[:200]}"


def _raw(request: dict) -> str:
    mail = EmailMessage()
    to = request["to"]
    mail["To"] = ", ".join(to) if isinstance(to, list) else to
    for field in ("cc", "bcc"):
        value = request.get(field)
        if value:
            mail[field.capitalize()] = ", ".join(value) if isinstance(value, list) else value
    mail["Subject"] = request.get("subject", "")
    mail.set_content(request["message"])
    return base64.urlsafe_b64encode(mail.as_bytes()).decode()


def search_gmail(request: dict, hub) -> str:
    def action():
        users = _service(hub)
        limit = int(request.get("max_results", 10))
        if request.get("resource", "MESSAGES") == "THREADS":
            threads = users.threads().list(userId="me", q=request["query"], maxResults=limit).execute()
            return "\n".join(f"Thread: {t['id']} | {t.get('snippet', '')[:200]}"
                             for t in threads.get("threads", [])) or "No threads found."
        found = users.messages().list(userId="me", q=request["query"], maxResults=limit).execute()
        lines = [_describe(users.messages().get(userId="me", id=m["id"], format="full").execute(), full=False)
                 for m in found.get("messages", [])]
        return "\n".join(lines) or "No messages found."
    return run_google(hub.app, action)


def get_gmail_message(request: dict, hub) -> str:
    return run_google(hub.app, lambda: _describe(
        _service(hub).messages().get(userId="me", id=request["message_id"],
                                                          format="full").execute(), full=True))


def get_gmail_thread(request: dict, hub) -> str:
    def action():
        thread = _service(hub).threads().get(userId="me", id=request["thread_id"]).execute()
        return "\n\n".join(_describe(m, full=True) for m in thread.get("messages", [])) or "Empty thread."
    return run_google(hub.app, action)


def send_gmail_message(request: dict, hub) -> str:
    def action():
        sent = _service(hub).messages().send(
            userId="me", body={"raw": _raw(request)}).execute()
        return f"Message sent. Message Id: {sent['id']}"
    return run_google(hub.app, action)


def create_gmail_draft(request: dict, hub) -> str:
    def action():
        draft = _service(hub).drafts().create(
            userId="me", body={"message": {"raw": _raw(request)}}).execute()
        return f"Draft created. Draft Id: {draft['id']}"
    return run_google(hub.app, action)


def delete_gmail_message(request: dict, hub) -> str:
    def action():
        _service(hub).messages().delete(userId="me", id=request["message_id"]).execute()
        return f"Message {request['message_id']} deleted."
    return run_google(hub.app, action)


FUNCTIONALITIES = {f.__name__: f for f in (search_gmail, get_gmail_message, get_gmail_thread, send_gmail_message,
                                            create_gmail_draft, delete_gmail_message)}
