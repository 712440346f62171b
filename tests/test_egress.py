"""Egress policy: registrable-domain matching and the look-alikes it must refuse."""

from __future__ import annotations

import pytest

from helpers.sandbox.egress import check, normalize_allowed
from tests.http_helpers import QuietHandler

ALLOWED = frozenset({"google.com", "googleapis.com", "localhost"})

CASES = [
    ("https://google.com/", True),
    ("https://mail.google.com/mail", True),
    ("https://www.googleapis.com/gmail/v1/users/me/messages", True),
    ("https://GOOGLE.com./", True),
    ("http://localhost/x", True),
    ("http://localhost:8080/x", False),  # a port-less entry admits 443 and 80 only
    ("https://mail.google.com:8443/", False),
    ("https://google.com.evil.io/", False),
    ("https://googIe.com/", False),
    ("https://g00gle.com/", False),
    ("https://evil.io/?next=https://google.com", False),
    ("https://google.com@evil.io/", False),
    ("https://user:pw@google.com/", False),
    ("https://127.0.0.1/", False),
    ("https://[::1]/", False),
    ("https://8.8.8.8/", False),
    ("https://2130706433/", False),
    ("https://xn--ggle-0nda.com/", False),
    ("https://gооgle.com/", False),  # Cyrillic o's
    ("ftp://google.com/", False),
    ("file:///etc/passwd", False),
    ("javascript:alert(1)", False),
    ("https://google.com:99999/", False),
    ("https:///nohost", False),
    ("https://co.uk/", False),
    ("https://localhost.evil.io/", False),
]


@pytest.mark.parametrize("url,allowed", CASES)
def test_egress(url, allowed):
    assert check(url, ALLOWED).allowed is allowed


def test_ip_literal_allowed_only_when_listed():
    assert check("http://127.0.0.1/x", {"127.0.0.1"}).allowed
    assert check("http://127.0.0.1:9/x", {"127.0.0.1:9"}).allowed
    assert not check("http://127.0.0.2:9/x", {"127.0.0.1:9"}).allowed


@pytest.mark.parametrize("entry,ok", [("google.com", True), ("localhost", True), ("127.0.0.1", True),
                                      ("mail.google.com", False), ("co.uk", False), ("com", True),
                                      ("https://google.com", False), ("google.com/x", False)])
def test_allowed_entries_are_validated(entry, ok):
    if ok:
        normalize_allowed(entry)
    else:
        with pytest.raises(ValueError):
            normalize_allowed(entry)


def test_no_network_fetch(monkeypatch):
    import socket

    def refuse(*args, **kwargs):
        raise AssertionError("the egress check tried to use the network")
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    from helpers.sandbox import egress
    egress._extractor.cache_clear()
    assert check("https://a.b.example.co.uk/", {"example.co.uk"}).allowed


# --- ports ------------------------------------------------------------------------------------

@pytest.mark.parametrize("entries,url,allowed", [
    ({"localhost"}, "http://localhost/", True),
    ({"localhost"}, "https://localhost/", True),
    ({"localhost"}, "http://localhost:11434/v1", False),   # the user's local LLM server
    ({"localhost"}, "http://localhost:6379/", False),      # a local Redis
    ({"localhost:8080"}, "http://localhost:8080/", True),
    ({"localhost:8080"}, "http://localhost:8081/", False),
    ({"localhost:8080"}, "http://localhost/", False),      # a listed port replaces the defaults
    ({"localhost", "localhost:8080"}, "http://localhost/", True),
    ({"example.com:8443"}, "https://api.example.com:8443/", True),
    ({"example.com:8443"}, "https://api.example.com/", False),
    ({"example.com"}, "https://api.example.com:443/", True),
    ({"example.com"}, "http://api.example.com:8443/", False),
    ({"127.0.0.1:9000"}, "http://127.0.0.1:9000/", True),
    ({"127.0.0.1:9000"}, "http://127.0.0.1:9001/", False),
    ({"[::1]:9000"}, "http://[::1]:9000/", True),
    ({"::1"}, "http://[::1]:9000/", False),
])
def test_ports_are_part_of_the_policy(entries, url, allowed):
    assert check(url, frozenset(entries)).allowed is allowed


def test_control_the_port_alone_decides():
    """Control: the URL refused for a port-less entry is admitted once its port is listed."""
    url = "http://localhost:11434/v1/chat/completions"
    assert not check(url, {"localhost"}).allowed
    assert check(url, {"localhost", "localhost:11434"}).allowed


@pytest.mark.parametrize("entry,normal", [("localhost:8080", "localhost:8080"),
                                          ("Example.COM:8443", "example.com:8443"),
                                          ("[::1]:8080", "[::1]:8080"), ("127.0.0.1:1", "127.0.0.1:1")])
def test_entries_with_ports(entry, normal):
    assert normalize_allowed(entry) == normal


@pytest.mark.parametrize("entry", ["localhost:0", "localhost:65536", "localhost:http", "localhost:", "[::1]8080",
                                   "mail.google.com:443", "user@localhost:8080"])
def test_bad_entries_with_ports(entry):
    with pytest.raises(ValueError):
        normalize_allowed(entry)


# --- the address connected is the address checked; nothing carried between apps ------------------

class LocalServer:
    """A plain HTTP server on 127.0.0.1 that records what reaches it; /login sets a cookie."""

    def __init__(self) -> None:
        import http.server
        import threading
        self.seen: list[tuple[str, str | None]] = []
        server = self

        class Handler(QuietHandler):
            def do_GET(self):  # noqa: N802
                server.seen.append((self.path, self.headers.get("cookie")))
                cookie = (("set-cookie", "session=app-a-secret; Path=/"),) if self.path == "/login" else ()
                self.send_json(200, {"path": self.path, "cookie": self.headers.get("cookie")}, cookie)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def servers():
    started = [LocalServer(), LocalServer()]
    yield started
    for s in started:
        s.close()


def test_listed_port_is_reached_through_the_hub_and_others_are_not(hub, servers):
    """Real spokes, real HTTP on 127.0.0.1: the listed port answers; the same host on another
    port (another local service) and a port-less entry are refused before any connection."""
    from tests.sandbox_helpers import sandbox_code
    app, other = servers
    code = (f"for port in ({app.port}, {other.port}):\n    r = hub.http('GET', f'http://localhost:{{port}}/hello')\n"
            "    print(port, r.type, getattr(r, 'status', getattr(r, 'code', '')))")
    outcome = sandbox_code(hub, code, allowed_domains=frozenset({f"localhost:{app.port}"}))
    assert outcome.response["stdout"].splitlines() == [f"{app.port} http_response 200",
                                                       f"{other.port} error egress_denied"]
    outcome = sandbox_code(hub, code, allowed_domains=frozenset({"localhost"}))
    assert outcome.response["stdout"].splitlines() == [f"{app.port} error egress_denied",
                                                       f"{other.port} error egress_denied"]
    assert app.seen == [("/hello", None)] and other.seen == []


@pytest.fixture
def rebinding_dns(monkeypatch):
    """A resolver that answers a public address for the first look-up of rebind.example.com and
    127.0.0.1 after (DNS rebinding); outbound connections to anything but loopback are refused
    locally (recorded), so no packet leaves this machine."""
    import socket
    real_getaddrinfo, real_connect = socket.getaddrinfo, socket.socket.connect
    lookups: list[str] = []
    attempted: list[str] = []

    def getaddrinfo(host, port, *args, **kwargs):
        if host != "rebind.example.com":
            return real_getaddrinfo(host, port, *args, **kwargs)
        lookups.append(host)
        address = "93.184.216.34" if len(lookups) == 1 else "127.0.0.1"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port or 0))]

    def connect(sock, address):
        if isinstance(address, tuple) and not str(address[0]).startswith(("127.", "::1")):
            attempted.append(address[0])
            raise ConnectionRefusedError(111, "refused by the test: no packet leaves this machine")
        return real_connect(sock, address)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)
    return lookups, attempted


def test_rebinding_cannot_redirect_a_checked_request(servers, rebinding_dns):
    """The name is looked up once; the public address that passed the check is the one dialled,
    so the second answer (127.0.0.1, where a local service listens) is never used."""
    from helpers.isc.messages import HttpRequest
    from helpers.sandbox.http_broker import HttpBroker
    lookups, attempted = rebinding_dns
    local = servers[0]
    broker = HttpBroker(timeout=5)
    try:
        url = f"http://rebind.example.com:{local.port}/internal"
        decision, reply = broker.serve("app", HttpRequest(id=1, method="GET", url=url),
                                       frozenset({f"example.com:{local.port}"}), {})
    finally:
        broker.close()
    assert decision.allowed and reply.type == "error" and reply.code == "unavailable"
    assert lookups == ["rebind.example.com"] and attempted == ["93.184.216.34"] and local.seen == []


def test_control_check_then_connect_is_rebound(servers, rebinding_dns):
    """Control: checking the name and letting the client resolve it again (what the hub did
    before) reaches the local service behind the public answer."""
    import httpx

    from helpers.sandbox.http_broker import HttpBroker
    local = servers[0]
    url = f"http://rebind.example.com:{local.port}/internal"
    broker = HttpBroker(timeout=5)
    try:
        assert broker.resolve(url, frozenset())[1] is None  # the check passes: a public address
    finally:
        broker.close()
    with httpx.Client(trust_env=False) as client:
        assert client.get(url).status_code == 200
    assert local.seen == [("/internal", None)]


def test_no_cookie_is_carried_from_one_app_to_another(servers):
    """App A logs in (the server sets a cookie); app B's request to the same server carries none."""
    import httpx

    from helpers.isc.messages import HttpRequest
    from helpers.sandbox.http_broker import HttpBroker
    local = servers[0]
    allowed = frozenset({f"localhost:{local.port}"})
    broker = HttpBroker(timeout=5)
    try:
        broker.serve("app_a", HttpRequest(id=1, method="GET", url=f"http://localhost:{local.port}/login"), allowed, {})
        broker.serve("app_b", HttpRequest(id=2, method="GET", url=f"http://localhost:{local.port}/echo"), allowed, {})
    finally:
        broker.close()
    assert local.seen == [("/login", None), ("/echo", None)]
    with httpx.Client(trust_env=False) as shared:  # control: one shared client jar does carry it
        shared.get(f"http://localhost:{local.port}/login")
        shared.get(f"http://localhost:{local.port}/echo")
    assert local.seen[-1] == ("/echo", "session=app-a-secret")


# --- TLS to a pinned address still verifies the name ----------------------------------------------

@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    """An HTTPS server on 127.0.0.1 with a certificate for 'localhost' only, and a context trusting it."""
    import datetime
    import http.server
    import ssl
    import threading

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    folder = tmp_path_factory.mktemp("tls")
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))

    class Handler(QuietHandler):
        def do_GET(self):  # noqa: N802
            self.send_body(200, f"host={self.headers.get('host')}".encode())
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_side.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    httpd.socket = server_side.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    trust = ssl.create_default_context(cafile=str(folder / "cert.pem"))
    yield httpd.server_address[1], trust
    httpd.shutdown()
    httpd.server_close()


def test_pinned_tls_checks_the_url_host_name(tls_server):
    import httpx

    from helpers.sandbox.http_broker import PinnedTransport
    port, trust = tls_server
    with httpx.Client(transport=PinnedTransport(("127.0.0.1",), trust)) as client:
        assert client.get(f"https://localhost:{port}/").text == f"host=localhost:{port}"
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED|match"):
            client.get(f"https://impostor.example:{port}/")  # same address, a name the certificate lacks


def test_control_without_the_name_check_the_impostor_passes(tls_server):
    """Control: the refusal above is the host-name check (off, the same connection succeeds)."""
    import ssl

    import httpx

    from helpers.sandbox.http_broker import PinnedTransport
    port, trust = tls_server
    lax = ssl.create_default_context(cafile=None)
    lax.check_hostname = False
    lax.verify_mode = ssl.CERT_NONE
    with httpx.Client(transport=PinnedTransport(("127.0.0.1",), lax)) as client:
        assert client.get(f"https://impostor.example:{port}/").status_code == 200


def test_https_through_the_broker_pins_and_verifies(tls_server):
    from helpers.isc.messages import HttpRequest
    from helpers.sandbox.http_broker import HttpBroker
    port, trust = tls_server
    broker = HttpBroker(timeout=5, ssl_context=trust)
    try:
        decision, reply = broker.serve("app", HttpRequest(id=1, method="GET", url=f"https://localhost:{port}/x"),
                                       frozenset({f"localhost:{port}"}), {})
    finally:
        broker.close()
    assert decision.allowed and reply.type == "http_response" and reply.body == f"host=localhost:{port}"
