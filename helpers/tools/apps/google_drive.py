"""Runs in: spoke, vanillagpt (app code: in its own spoke, or in VanillaGPT's one process).

google_drive_retrieve: find documents in Google Drive and return their text, on the
Drive API through the hub (google-api-python-client)."""

from __future__ import annotations

from helpers.tools.google.client import build_service, run_google

SCOPES = ["https://www.googleapis.com/auth/drive.readonly"]
MAX_FILES = 3
MAX_TEXT = 1500
GOOGLE_DOC = "application/vnd.google-apps.document"


def google_drive_retrieve(request: dict, hub) -> str:
    def action():
        files = build_service("drive", "v3", hub, SCOPES).files()
        query = request["query"].replace("\\", "\\\\").replace("'", "\\'")
        found = files.list(q=f"fullText contains '{query}' and trashed = false", pageSize=MAX_FILES,
                           fields="files(id, name, mimeType)").execute().get("files", [])
        parts = []
        for f in found:
            if f.get("mimeType") == GOOGLE_DOC:
                data = files.export(fileId=f["id"], mimeType="text/plain").execute()
            else:
                data = files.get_media(fileId=f["id"]).execute()
            text = data.decode(errors="replace") if isinstance(data, bytes) else str(data)
            parts.append(f"{f['name']}:\n{text[:MAX_TEXT]}")
        return "\n\n".join(parts) or "No documents found."
    return run_google(hub.app, action)


FUNCTIONALITIES = {"google_drive_retrieve": google_drive_retrieve}
