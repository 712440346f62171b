"""Runs in: spoke, vanillagpt (app code: in its own spoke, or in VanillaGPT's one process).

Google API clients for apps, on the real google-api-python-client code path.

Runs inside an app's spoke. Discovery documents are the library's bundled ones
(no discovery fetch). Every HTTP request, OAuth token refresh included, goes to
the hub as an ``http_request`` (``HubHttp`` is the httplib2-shaped adapter the
library talks to); the spoke itself has no socket. The OAuth token lives in the
app's own data directory (its working directory), readable by this spoke only.
With the ``local`` backend the hub answers Google's hosts from a simulated
account on disk, and the app sends no credentials.
"""

from __future__ import annotations

import base64
import json
import weakref

import httplib2

from helpers.isc.messages import ErrorMessage

TOKEN_FILE = "token.json"
REAUTHORISE = "run `python -m helpers.tools.google.authorize {app}` to authorise it again"


class EgressRefused(RuntimeError):
    """The hub refused a request of this app (domain not allowed, or the request failed)."""


class HubHttp:
    """What googleapiclient and google-auth-httplib2 expect from an httplib2.Http, through the hub."""

    timeout = None
    redirect_codes = frozenset()
    follow_redirects = False

    def __init__(self, hub) -> None:
        self.hub = hub
        self.connections: dict = {}

    def request(self, uri, method="GET", body=None, headers=None, redirections=5, connection_type=None):
        reply = self.hub.http(method, uri, headers={k: str(v) for k, v in (headers or {}).items()}, body=body)
        if isinstance(reply, ErrorMessage):
            raise EgressRefused(reply.message)
        content = base64.b64decode(reply.body) if reply.body_encoding == "base64" else reply.body.encode()
        response = httplib2.Response({"status": str(reply.status), **{k.lower(): v for k, v in reply.headers.items()}})
        return response, content

    def close(self) -> None:
        pass


# Built services, per hub link (one per app), so the discovery document is parsed once.
_SERVICES: weakref.WeakKeyDictionary[object, dict] = weakref.WeakKeyDictionary()


def build_service(api: str, version: str, hub, scopes: list[str]):
    """A googleapiclient service whose requests go through ``hub``."""
    built = _SERVICES.setdefault(hub, {})
    key = (api, version, hub.settings.get("backend", "local"))
    if key not in built:
        built[key] = _build(api, version, hub, scopes)
    return built[key]


def _build(api: str, version: str, hub, scopes: list[str]):
    from google.auth.credentials import AnonymousCredentials
    from google.oauth2.credentials import Credentials
    from google_auth_httplib2 import AuthorizedHttp
    from googleapiclient.discovery import build

    app = hub.app
    if hub.settings.get("backend", "local") == "google":
        try:
            credentials = Credentials.from_authorized_user_file(TOKEN_FILE, scopes)
        except FileNotFoundError:
            raise RuntimeError(f"{app} is not authorised with Google yet: {REAUTHORISE.format(app=app)}") from None
        except (ValueError, json.JSONDecodeError) as exc:
            raise RuntimeError(f"{app}'s Google token is damaged ({exc}): {REAUTHORISE.format(app=app)}") from None
    else:
        credentials = AnonymousCredentials()
    http = AuthorizedHttp(credentials, http=HubHttp(hub))
    return build(api, version, http=http, static_discovery=True, cache_discovery=False)


def run_google(app: str, action):
    """Run ``action()``; turn Google and egress failures into one clear sentence for the agent."""
    from google.auth.exceptions import RefreshError, TransportError
    from googleapiclient.errors import HttpError

    try:
        return action()
    except RefreshError as exc:
        reason = exc.args[0] if exc.args else "refused"
        return f"{app} could not refresh its Google authorisation ({reason}); {REAUTHORISE.format(app=app)}."
    except EgressRefused as exc:
        return f"SecGPT refused {app}'s request: {exc}"
    except TransportError as exc:
        return f"{app} could not reach Google: {exc}"
    except HttpError as exc:
        return f"Google answered {exc.status_code}: {exc.reason}"
