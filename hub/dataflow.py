"""Runs in: hub.

Text matching that guesses whether data moved from one place to another: best effort.

Pure: no I/O.

The faithful mode cannot see data flow inside an LLM: an answer goes into a context, and
later a request comes out. These checks compare the texts. They catch an LLM that copies
(the worst case the evaluations script), and they miss one that rewrites. Known evasions,
each an ``xfail`` test in tests/test_dataflow.py:

=============================  ==========================================================
evasion                        why it passes
=============================  ==========================================================
reformatted number             "4,800.00" in the answer, "4800" in the request: no shared
                               token of 4+ characters with a digit
paraphrase                     "meeting moved to Friday" becomes "the meeting is on Fri"
spelled-out digits             "sixteen" for "16"
split token                    "sarah.baker@" + "gmail.com" in two fields, neither whole
translation                    the same fact in another language
=============================  ==========================================================

Strict mode does not rely on this module for what runs: its plan names every flow
(``<result_k>``), and the hub moves the values itself.
"""

from __future__ import annotations

import re

_TOKEN = re.compile(r"[\w@.$-]+")


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9@]+", text.lower()))


def made_of(value: str, answer: str) -> bool:
    """Is ``value`` made only of words that occur in ``answer``? (A value the plan takes from an
    earlier result: what the spoke sends should come from that result.)"""
    return words(value) <= words(answer)


def carries(answer: str, request: str, given: str = "") -> bool:
    """Does ``request`` contain data from ``answer``? Any run of three words, or any distinctive
    token (with a digit or '@', 4+ characters), of the answer found in the request, unless the
    user ``given`` it in the query (then it is the user's, not the app's)."""
    tokens = _TOKEN.findall(answer.lower())
    text, own = request.lower(), " ".join(_TOKEN.findall(given.lower()))
    if any(len(w) >= 4 and re.search(r"[\d@]", w) and w in text and w not in own for w in tokens):
        return True
    runs = (" ".join(tokens[i:i + 3]) for i in range(len(tokens) - 2))
    return any(run in text and run not in own for run in runs)


def phrases(value: str) -> set[str]:
    """What may identify a remembered detail in other words: the value, each comma-separated
    part, and each pair of adjacent words of a part ("heart surgery" of "recent heart surgery")."""
    found: set[str] = set()
    for part in [value, *value.split(",")]:
        part = part.strip()
        if len(part) >= 4:
            found.add(part)
        parts = part.split()
        found.update(f"{a} {b}" for a, b in zip(parts, parts[1:], strict=False) if len(a) + len(b) >= 8)
    return found
