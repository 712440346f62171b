"""Runs in: hub, vanillagpt.

Egress policy: may this app reach this URL?

Decided on the URL's registrable domain (eTLD+1), computed with tldextract's
bundled public-suffix list and never a network fetch. An app's allowed entry
``google.com`` admits ``google.com`` and every name under it; a look-alike
(``google.com.evil.io``, ``googIe.com``) has another registrable domain and is
denied. Names with no registrable domain (``localhost``, IP literals) are
admitted only when an app lists that exact host. Userinfo, odd schemes and
non-ASCII spoofs are refused before any lookup.

Ports are part of the policy: an entry without a port admits only the web's own
ports, 443 and 80 (``localhost`` is not every local service: the user's local
LLM server, a database); ``localhost:8080`` or ``example.com:8443`` admits that
port and no other. The URL's effective port (its scheme's default when it names
none) must be admitted.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

import tldextract

ALLOWED_SCHEMES = ("https", "http")
DEFAULT_PORTS = {"https": 443, "http": 80}
PORTLESS_ENTRY_PORTS = frozenset(DEFAULT_PORTS.values())  # what an entry without a port admits
# An app's allowed entries: a collection of entries, never one string (that would be its letters).
AllowedEntries = frozenset[str] | set[str] | tuple[str, ...]


@dataclass(frozen=True)
class EgressDecision:
    allowed: bool
    host: str
    domain: str
    reason: str


@lru_cache(maxsize=1)
def _extractor() -> tldextract.TLDExtract:
    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


def registrable_domain(host: str) -> str:
    """eTLD+1 of ``host`` ('' for IP literals, single labels and bare suffixes)."""
    return _extractor()(host).top_domain_under_public_suffix


def split_entry(entry: str) -> tuple[str, int | None]:
    """(host, port) of an allowed entry: ``example.com``, ``localhost:8080``, ``[::1]:8080``, ``::1``.
    Raises ValueError for a port that is not a number in 1-65535."""
    text = entry.strip().lower()
    if text.startswith("["):  # a bracketed IPv6 literal, perhaps with a port
        host, _, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else None
        if rest and port_text is None:
            raise ValueError(f"allowed domain {entry!r}: expected [IPv6]:PORT")
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    else:
        host, port_text = text, None  # a name, or a bare IPv6 literal
    host = host.rstrip(".")
    if port_text is None:
        return host, None
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"allowed domain {entry!r}: the port must be a number from 1 to 65535")
    return host, int(port_text)


def normalize_allowed(entry: str) -> str:
    """Validate one allowed-domain entry from an app manifest; returns it normalised
    (``host`` or ``host:port``). Raises ValueError (with the fix) for an entry that would
    admit more than meant."""
    host, port = split_entry(entry)
    if not host or "/" in host or "@" in host or ":" in host and not _is_ip(host):
        raise ValueError(f"allowed domain {entry!r} must be a bare host name such as 'example.com', "
                         "with a port if not 443 or 80 ('localhost:8080')")
    if not (_is_ip(host) or "." not in host):
        domain = registrable_domain(host)
        if domain != host:
            hint = f"use {domain!r}" if domain else "it is a public suffix, which would admit everyone"
            raise ValueError(f"allowed domain {entry!r} is not a registrable domain: {hint}")
    # else an exact-match entry: an IP literal or a single label such as localhost
    if port is None:
        return host
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _entries(allowed: AllowedEntries) -> set[tuple[str, int | None]]:
    """The app's entries as (host, port), ignoring any that cannot be read (they admit nothing)."""
    found: set[tuple[str, int | None]] = set()
    for entry in allowed:
        try:
            found.add(split_entry(entry))
        except ValueError:
            continue
    return found


def _admits(entries: set[tuple[str, int | None]], host: str, port: int) -> bool:
    return (host, port) in entries or (port in PORTLESS_ENTRY_PORTS and (host, None) in entries)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
        return True
    except ValueError:
        return False


def exact_hosts(allowed: AllowedEntries) -> frozenset[str]:
    """The entries matched exactly (IP literals, single labels such as localhost), which the
    app may reach even though they are not public addresses."""
    return frozenset(host for host, _ in _entries(allowed) if _is_ip(host) or "." not in host)


def check(url: str, allowed: AllowedEntries) -> EgressDecision:
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a malformed port
    except ValueError:
        return EgressDecision(False, "", "", "malformed URL")
    if parts.scheme not in ALLOWED_SCHEMES:
        return EgressDecision(False, "", "", f"scheme {parts.scheme or '(none)'!r} is not allowed")
    port = DEFAULT_PORTS[parts.scheme] if port is None else port
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        return EgressDecision(False, "", "", "credentials in the URL are not allowed")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        return EgressDecision(False, "", "", "URL has no host")
    if not host.isascii() or any(c.isspace() for c in host):
        return EgressDecision(False, host, "", "non-ASCII host names must be given in punycode")
    entries = _entries(allowed)
    if _is_ip(host) or "." not in host:
        key = host
        if not any(h == host for h, _ in entries):
            return EgressDecision(False, host, host, f"{host} has no registrable domain and is not listed for this app")
    else:
        key = registrable_domain(host)
        if not key or not any(h == key for h, _ in entries):
            return EgressDecision(False, host, key, f"{key or host} is not among this app's allowed domains")
    if not _admits(entries, key, port):
        ports = sorted({p for h, p in entries if h == key for p in ((p,) if p else PORTLESS_ENTRY_PORTS)})
        return EgressDecision(False, host, key, f"port {port} of {key} is not allowed for this app (only "
                                                f"{', '.join(map(str, ports))}); its manifest may list '{key}:{port}'")
    return EgressDecision(True, host, key, f"{key}:{port} is allowed for this app")
