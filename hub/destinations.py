"""Runs in: hub.

Destinations named in a plan: where a planned input would send something.

Pure: no I/O and no network (host names are checked against tldextract's bundled suffix list).

The planner is an LLM that reads text apps wrote (vendor descriptions, earlier
answers kept in the chat history), so an app can make it add "send the invoice to
billing-check@attacker.io" to a plan. A planned input that names a destination the
user never gave, neither in the request nor among the details the hub remembers
about them, makes that step *not expected*. This module only recognises
destinations (``RECOGNISERS``, one row per kind, each with why it is one) and
compares them; the hub operator decides what follows. A value the plan takes by
reference from an earlier result (``<result_k>``) is never looked at here: that
flow is the user's, judged by the rule for results.

Must never: fetch anything, or treat a destination as known because it merely
resembles one the user gave. Comparison is on the normalised value: case, a
leading ``www.``, a link's scheme and path, a phone number's separators and
country code; a subdomain of a host the user named is another host.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from helpers.sandbox.egress import registrable_domain

RESULT_REF = re.compile(r"<result_\d+>")


@dataclass(frozen=True)
class Destination:
    kind: str   # a key of RECOGNISERS
    text: str   # as written in the input
    key: str    # normalised, for comparison with what the user gave

    def __str__(self) -> str:
        return f"{self.text} ({LABELS[self.kind]})"


@dataclass(frozen=True)
class Recogniser:
    pattern: re.Pattern
    # (the destination as written, its normalised key), or None: not a destination after all
    normalise: Callable[[str], tuple[str, str] | None]
    why: str


def _domain(name: str) -> str | None:
    """The longest run of leading labels of ``name`` that ends in a public suffix: text runs
    on after a sentence's full stop ("www.site.com.They sent"), and that is not part of it."""
    labels = name.split(".")
    for n in range(len(labels), 1, -1):
        candidate = ".".join(labels[:n])
        if registrable_domain(candidate):
            return candidate
    return None


def _email(text: str) -> tuple[str, str] | None:
    local, _, domain = text.removeprefix("mailto:").rpartition("@")
    domain = _domain(domain) or domain  # a name without a public suffix (a local host) is kept whole
    address = f"{local}@{domain}"
    return address, address.lower()


def _url(text: str) -> tuple[str, str] | None:
    host = urlsplit(text if "//" in text else "//" + text).hostname or ""
    return (text, _host(host)) if host else None


def _host(text: str) -> str:
    return text.lower().rstrip(".").removeprefix("www.")


def _bare_host(text: str) -> tuple[str, str] | None:
    name = re.split(r"[/:]", text, maxsplit=1)[0]
    domain = _domain(name)  # "notes.txt", "e.g": no public suffix, so not a host
    if domain is None:
        return None
    return (text if domain == name else domain), _host(domain)


def _phone(text: str) -> tuple[str, str] | None:
    digits = re.sub(r"\D", "", text)
    # A country code may be written or not: compare the subscriber part.
    return (text, digits[-9:]) if 8 <= len(digits) <= 15 else None


def _iban(text: str) -> tuple[str, str] | None:
    compact = re.sub(r"\s", "", text).upper()
    return (text, compact) if sum(c.isdigit() for c in compact) >= 8 else None


def _account(text: str) -> tuple[str, str] | None:
    return text, text


# Order matters: each kind's matches are blanked before the next kind looks, so the domain of
# an e-mail address is not also a host, and a URL's digits are not also an account number.
RECOGNISERS: dict[str, Recogniser] = {
    "url": Recogniser(re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s\"'<>]+", re.IGNORECASE), _url,
                      "a link with a scheme: data put in it reaches whoever runs that host"),
    "email": Recogniser(re.compile(r"(?:mailto:)?[\w.+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)+", re.IGNORECASE), _email,
                        "an e-mail address: a message, a share or an invitation goes there"),
    "host": Recogniser(re.compile(r"(?<![\w@.-])(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{1,62}"
                                  r"(?::\d{1,5})?(?:/[^\s\"'<>]*)?", re.IGNORECASE), _bare_host,
                       "a host name without a scheme (www.example.com, evil.com/x): a web request goes there"),
    "ip": Recogniser(re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?::\d{1,5})?(?![\d.])"), _url,
                     "an IPv4 address: a request goes there"),
    "iban": Recogniser(re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b"), _iban,
                       "an IBAN-shaped account (two letters, two check digits, 11-30 more): money goes there"),
    "phone": Recogniser(re.compile(r"(?<![\w+])\+\d[\d ().-]{6,20}\d(?!\d)"
                                   r"|(?<![\w])\(?\d{3}\)?[ .-]\d{3}[ .-]\d{4}(?!\d)"), _phone,
                        "a phone number (+ and 8-15 digits, or 3-3-4 digits): a call or text goes there"),
    "account": Recogniser(re.compile(r"(?<![\w.,-])\d{9,18}(?![\w.,])"), _account,
                          "a run of 9-18 digits: an account number (a bank account, a phone without "
                          "separators)"),
}

LABELS = {"url": "link", "email": "e-mail address", "host": "host", "ip": "IP address", "iban": "bank account",
          "phone": "phone number", "account": "account number"}


def find(text: str) -> list[Destination]:
    """The destinations written in ``text``, in the order of RECOGNISERS."""
    found: list[Destination] = []
    for kind, rule in RECOGNISERS.items():
        def take(match: re.Match, kind: str = kind, rule: Recogniser = rule) -> str:
            seen = rule.normalise(match.group(0).rstrip(".,;:!?)]}"))
            if seen is None:
                return match.group(0)
            written, key = seen
            found.append(Destination(kind, written, f"{_family(kind)}:{key}"))
            return match.group(0).replace(written, " " * len(written), 1)
        text = rule.pattern.sub(take, text)
    return found


def _family(kind: str) -> str:
    """Kinds compared with each other: a host is the same whether written as a link or bare."""
    return {"url": "host", "ip": "host", "account": "number", "iban": "number"}.get(kind, kind)


def in_value(value) -> list[Destination]:
    """The destinations in a plan step's input (JSON), outside ``<result_k>`` references."""
    texts: list[str] = []

    def walk(v) -> None:
        if isinstance(v, str):
            texts.append(RESULT_REF.sub(" ", v))
        elif isinstance(v, (dict, list)):
            for x in (v.values() if isinstance(v, dict) else v):
                walk(x)
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            texts.append(json.dumps(v))
    walk(value)
    return [d for t in texts for d in find(t)]


def known_keys(texts: Iterable[str]) -> frozenset[str]:
    """What the user gave: the destinations in their request and remembered details."""
    keys = {d.key for t in texts for d in find(t)}
    # A phone number the user wrote without separators is also the same number.
    keys |= {"phone:" + k.split(":", 1)[1][-9:] for k in keys if k.startswith("number:")}
    return frozenset(keys)


def unknown(value, known: frozenset[str]) -> list[Destination]:
    """The destinations in ``value`` that the user did not give (each once)."""
    seen: dict[str, Destination] = {}
    for d in in_value(value):
        if d.key not in known and not (d.kind == "account" and "phone:" + d.key.split(":", 1)[1][-9:] in known):
            seen.setdefault(d.key, d)
    return list(seen.values())
