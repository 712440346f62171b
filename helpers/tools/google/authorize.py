"""Runs in: hub (the user's shell, often root; never in a spoke).

Authorise a Google app once: ``python -m helpers.tools.google.authorize gmail``.

Runs Google's installed-app OAuth flow (google-auth-oauthlib) in the hub's
environment with the OAuth client in data/credentials.json, then stores the
token in that app's own data directory (mode 0600, owned by the app's spoke
uid), where only that app's spoke can read it. The app can write that
directory, so the token is stored through ``app_dirs`` (no link followed, new
file renamed into place, owner set on the descriptor). Then set the app's
backend to ``google`` in data/app_settings.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from helpers.configs import paths
from helpers.sandbox import app_dirs
from helpers.sandbox.policy import spoke_identity
from helpers.tools.google.client import TOKEN_FILE
from helpers.utilities.errors import SecGPTError

SCOPES = {
    "gmail": ["https://mail.google.com/"],
    "google_drive_retrieve": ["https://www.googleapis.com/auth/drive.readonly"],
}
for _name in ("search_gmail", "get_gmail_message", "get_gmail_thread", "send_gmail_message", "create_gmail_draft",
              "delete_gmail_message"):
    SCOPES[_name] = SCOPES["gmail"]


def store_token(app: str, token_json: str) -> str:
    """Write ``token_json`` as ``app``'s token, readable only by the app's spoke. Returns the path.
    Raises ``app_dirs.UnsafeAppPath`` if the app planted a link (or anything but a file) there."""
    folder = paths.app_data_dir(app)
    identity = spoke_identity(app)
    app_dirs.prepare_app_dir(folder, identity)
    return str(app_dirs.write_file(folder, TOKEN_FILE, token_json.encode(), mode=0o600, owner=identity))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.tools.google.authorize",
                                     description=__doc__.split("\n\n", 1)[1])
    parser.add_argument("app", choices=sorted(SCOPES))
    parser.add_argument("--credentials", default=str(paths.data_dir() / "credentials.json"),
                        help="OAuth client file from the Google Cloud console (default data/credentials.json)")
    parser.add_argument("--no-browser", action="store_true", help="print the URL instead of opening a browser")
    args = parser.parse_args(argv)
    if not os.path.exists(args.credentials):
        print(f"authorize: {args.credentials} not found: create an OAuth client (type Desktop app) in the "
              "Google Cloud console, download it there, or pass --credentials PATH", file=sys.stderr)
        return 2
    from google_auth_oauthlib.flow import InstalledAppFlow
    flow = InstalledAppFlow.from_client_secrets_file(args.credentials, SCOPES[args.app])
    credentials = flow.run_local_server(port=0, open_browser=not args.no_browser)
    try:
        path = store_token(args.app, credentials.to_json())
    except SecGPTError as exc:
        print(f"authorize: {exc}", file=sys.stderr)
        return 2
    print(f"Token stored in {path}. Enable it with data/app_settings.json: "
          + json.dumps({args.app: {"backend": "google"}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
