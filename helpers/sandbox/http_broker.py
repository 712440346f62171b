"""Runs in: hub, vanillagpt.

Network egress on behalf of spokes: check the URL against the app's allowed
domains and ports, then perform the request from the hub (spokes have no sockets).

The name is resolved once: the addresses checked (public, unless the app lists
that exact host) are the ones connected to, with the original name as TLS SNI
and for certificate verification, so a second, different DNS answer (rebinding)
cannot send the request inside. The check holds whatever carries the request: a
replaced transport (recorded responses) gets the same look-up and the same
refusal, through a resolver a test may fake, never a switch that turns it off.
Nothing is kept between requests (no connection reuse, no cookie jar): one app's
session never rides along with another's. Redirects are not followed here: a 3xx
goes back to the app, whose next request is checked again. Responses are capped
so they fit one frame.

Shared ground: the hub serves spokes' requests with it, VanillaGPT its tools' requests; it
must never import hub/ or vanillagpt/.
"""

from __future__ import annotations

import base64
import binascii
import http.cookiejar
import ipaddress
import socket
import ssl
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

import httpcore
import httpx

from helpers.isc.messages import ErrorMessage, HttpRequest, HttpResponse
from helpers.sandbox import egress

if TYPE_CHECKING:  # the offline Google backend is imported only when an app uses it
    from helpers.tools.google.local_api import LocalGoogleAPI

MAX_RESPONSE_BYTES = 128 * 1024  # JSON escaping can grow a body several times within the frame
TIMEOUT_S = 30.0  # for the whole request, not per read
# Never forwarded from a spoke: the hub decides where a request goes and how it is framed.
HOP_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection", "proxy-authorization",
                         "upgrade", "te", "trailer", "keep-alive"})

# ``resolver(host, port)``: the addresses a TCP connection to ``host`` would try, in order;
# OSError when the name does not resolve.
Resolver = Callable[[str, int], Sequence[str]]


def system_resolver(host: str, port: int) -> tuple[str, ...]:
    """The system's answer (getaddrinfo), without duplicates, in its order."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return tuple(dict.fromkeys(str(info[4][0]) for info in infos))


def _no_cookies() -> http.cookiejar.CookieJar:
    """A jar that keeps nothing: a cookie one app's server sets must not go out with another's request."""
    return http.cookiejar.CookieJar(policy=http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))


class _PinnedBackend(httpcore.SyncBackend):
    """Connects to the addresses the broker checked, whatever host name the connection is for."""

    def __init__(self, addresses: tuple[str, ...]) -> None:
        self.addresses = addresses

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None) -> httpcore.NetworkStream:
        error: Exception | None = None
        for address in self.addresses:  # in resolver order, like socket.create_connection
            try:
                return super().connect_tcp(address, port, timeout=timeout, local_address=local_address,
                                           socket_options=socket_options)
            except httpcore.ConnectError as exc:
                error = exc
        raise error or httpcore.ConnectError(f"no address to connect to for {host}")


class PinnedTransport(httpx.HTTPTransport):
    """httpx's own transport, its connections made to ``addresses`` only. TLS still uses the
    URL's host name: for SNI and for checking the certificate (``ssl_context`` verifies)."""

    def __init__(self, addresses: tuple[str, ...], ssl_context: ssl.SSLContext) -> None:
        super().__init__(verify=ssl_context, trust_env=False)
        if not isinstance(getattr(self, "_pool", None), httpcore.ConnectionPool):  # httpx's layout changed
            raise RuntimeError("httpx.HTTPTransport keeps no httpcore pool in _pool: update PinnedTransport")
        self._pool.close()
        self._pool = httpcore.ConnectionPool(ssl_context=ssl_context, network_backend=_PinnedBackend(addresses),
                                             max_connections=1, max_keepalive_connections=0)


class HttpBroker:
    def __init__(self, timeout: float = TIMEOUT_S, transport: httpx.BaseTransport | None = None,
                 local_google: LocalGoogleAPI | None = None, services: Mapping[str, httpx.BaseTransport] | None = None,
                 ssl_context: ssl.SSLContext | None = None, resolver: Resolver = system_resolver) -> None:
        """``transport`` replaces the network once the name is checked (tests replay recorded
        responses through it; ``resolver`` then says where the name points). It must not reach
        the network itself: a real transport would look the name up again, after the check
        (DNS rebinding), so one is refused;
        ``local_google`` (a LocalGoogleAPI) answers Google's hosts for apps on the offline backend;
        ``services`` maps single-label host names to simulated services answered in this process
        (an app reaches one only if it lists that exact host, like any host without a domain);
        ``ssl_context`` verifies servers' certificates (default: the certifi bundle);
        ``resolver`` looks names up (default: the system's resolver)."""
        if isinstance(transport, httpx.HTTPTransport):
            raise ValueError("transport replaces the network and must not reach it: an httpx.HTTPTransport would "
                             "look the name up again after the address check; leave transport unset")
        self._client = httpx.Client(follow_redirects=False, timeout=timeout, trust_env=False,
                                    transport=transport, cookies=_no_cookies())
        self._ssl = ssl_context or httpx.create_ssl_context(trust_env=False)
        self._local_google = local_google
        self._local_client: httpx.Client | None = None
        for host in services or {}:
            if "." in host or host != host.lower():
                raise ValueError(f"simulated service host {host!r} must be one lower-case label, "
                                 "so that only an app listing it exactly can reach it")
        self._services = {host: httpx.Client(transport=t, follow_redirects=False, cookies=_no_cookies())
                          for host, t in (services or {}).items()}
        self._transport = transport
        self._resolver = resolver
        self.timeout = timeout

    def decide(self, request: HttpRequest, allowed: frozenset[str]) -> egress.EgressDecision:
        return egress.check(request.url, allowed)

    def serve(self, app: str, request: HttpRequest, allowed: frozenset[str],
              settings: dict[str, str]) -> tuple[egress.EgressDecision, HttpResponse | ErrorMessage]:
        """An app's request, end to end: the egress decision, then (if allowed) the request,
        to the network or, for an app on the offline Google backend, to the simulated account."""
        decision = self.decide(request, allowed)
        if not decision.allowed:
            return decision, ErrorMessage(id=request.id, code="egress_denied",
                                          message=f"{app} may not reach {request.url}: {decision.reason}")
        offline = settings.get("google_api", "") if settings.get("backend", "local") == "local" else None
        return decision, self.perform(request, offline_google=offline, exact_hosts=egress.exact_hosts(allowed))

    def _client_for(self, request: HttpRequest, offline_google: str | None) -> httpx.Client | None:
        from helpers.tools.google.local_api import LocalGoogleAPI, in_scope, is_google_host
        service = self._services.get(httpx.URL(request.url).host)
        if service is not None:
            return service
        if offline_google is None or not is_google_host(request.url):
            return self._client
        if not in_scope(request.url, offline_google):
            return None
        if self._local_client is None:
            api = self._local_google or LocalGoogleAPI()
            self._local_client = httpx.Client(transport=api.transport(), follow_redirects=False,
                                              cookies=_no_cookies())
        return self._local_client

    def resolve(self, url: str, exact_hosts: frozenset[str]) -> tuple[tuple[str, ...], str | None]:
        """The addresses to connect to for ``url``, looked up once, and the reason to refuse (or
        None): a private, loopback or link-local address (SSRF, DNS tricks) is refused unless the
        app lists that host exactly. The request then goes to these addresses and no other."""
        parsed = httpx.URL(url)
        host, port = parsed.host, parsed.port or (443 if parsed.scheme == "https" else 80)
        try:
            addresses = tuple(self._resolver(host, port))
        except OSError as exc:
            return (), f"{host} does not resolve ({exc.strerror or exc})"
        if not addresses:
            return (), f"{host} does not resolve (no address)"
        try:  # a resolver is handed in: what it returns is checked, not trusted
            parsed_addresses = [ipaddress.ip_address(a.split("%")[0]) for a in addresses]
        except ValueError:
            return (), f"{host} does not resolve (the resolver returned something that is not an address)"
        if host in exact_hosts:
            return addresses, None
        private = [a for a, ip in zip(addresses, parsed_addresses, strict=True) if not ip.is_global]
        return addresses, (f"{host} resolves to a non-public address ({private[0]})" if private else None)

    def perform(self, request: HttpRequest, offline_google: str | None = None,
                exact_hosts: frozenset[str] = frozenset()) -> HttpResponse | ErrorMessage:
        """Perform an allowed request. ``offline_google``: the Google API this app may use on the
        simulated account ("gmail", "drive"), or None for the network."""
        body: bytes | None = None
        if request.body is not None:
            try:
                body = (base64.b64decode(request.body, validate=True) if request.body_encoding == "base64"
                        else request.body.encode())
            except binascii.Error:
                return ErrorMessage(id=request.id, code="bad_message", message="body is not valid base64")
        try:
            httpx.URL(request.url)
        except httpx.InvalidURL as exc:  # the egress check's parser is more lenient (it drops control characters)
            return ErrorMessage(id=request.id, code="egress_denied", message=f"malformed URL: {exc}"[:300])
        client = self._client_for(request, offline_google)
        if client is None:
            return ErrorMessage(id=request.id, code="egress_denied",
                                message=f"this app's Google access ({offline_google}) does not cover {request.url}")
        pinned: httpx.Client | None = None
        if client is self._client:
            addresses, refusal = self.resolve(request.url, exact_hosts)
            if refusal:
                return ErrorMessage(id=request.id, code="egress_denied", message=refusal)
            if self._transport is None:  # the network itself: the addresses just checked, no others
                client = pinned = httpx.Client(transport=PinnedTransport(addresses, self._ssl),
                                               follow_redirects=False, timeout=self.timeout, trust_env=False,
                                               cookies=_no_cookies())
        try:
            return self._fetch(client, request, body)
        finally:
            if pinned is not None:
                pinned.close()

    def _fetch(self, client: httpx.Client, request: HttpRequest, body: bytes | None) -> HttpResponse | ErrorMessage:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
        deadline = time.monotonic() + self.timeout
        try:
            with client.stream(request.method, request.url, headers=headers, content=body) as response:
                data = bytearray()
                for chunk in response.iter_bytes():
                    data += chunk
                    if len(data) > MAX_RESPONSE_BYTES:
                        return ErrorMessage(id=request.id, code="unavailable",
                                            message=f"response larger than {MAX_RESPONSE_BYTES} bytes")
                    if time.monotonic() > deadline:  # a server dripping bytes must not hold the hub
                        return ErrorMessage(id=request.id, code="timeout",
                                            message=f"response not complete within {self.timeout:g}s")
                headers = {k: v for k, v in response.headers.items() if k.lower() != "set-cookie"}
                status = response.status_code
        except httpx.HTTPError as exc:
            return ErrorMessage(id=request.id, code="unavailable", message=f"request failed: {exc}"[:1000])
        try:
            return HttpResponse(id=request.id, status=status, headers=headers, body=data.decode("utf-8"))
        except UnicodeDecodeError:
            return HttpResponse(id=request.id, status=status, headers=headers,
                                body=base64.b64encode(bytes(data)).decode(), body_encoding="base64")

    def close(self) -> None:
        self._client.close()
        for service in self._services.values():
            service.close()
        if self._local_client is not None:
            self._local_client.close()
