"""Runs in: hub, vanillagpt (the tool importer, at manifest load).

Which names an app may take: not one the hub uses itself, and not one a reader (the
user in a permission dialog, the planner LLM choosing a functionality) could take for
another installed app's (``gmaiI`` for ``gmail``, ``rnetro_hail`` for ``metro_hail``).

Two names are confusable when their skeletons are equal: case folded, compatibility
forms and accents removed, Cyrillic and Greek look-alikes mapped to Latin, the
ASCII look-alikes (I/l/1/i, O/0, rn/m, vv/w) mapped to one form, and ``_``/``-``
dropped. Stricter than Unicode's own skeleton (UTS #39), on purpose: a refused
install costs a rename; a confusable one costs a wrong permission answer.
"""

from __future__ import annotations

import unicodedata

# Names the hub gives meaning to. An app may not take one (nor one confusable with it).
RESERVED_APP_NAMES: dict[str, str] = {
    "vanilla": "the hub's spoke for queries that need no app",
    "routing": "the hub's spoke for plans of several independent apps",
    "coordinator": "how permission dialogs name the routing spoke",
    "hub": "the hub's own memory namespace and LLM calls",
    "planner": "the planner's LLM calls",
    "memory": "the hub's memory upkeep (LLM calls)",
    "vanillagpt": "VanillaGPT's memory namespace",
    "secgpt": "the system itself, as answers and dialogs name it",
    "sandbox": "the sandbox command line's own app (python -m hub.sandbox_cli)",
}

# Cyrillic and Greek letters that look like Latin ones (lower case: names are case folded first).
HOMOGLYPHS = str.maketrans({
    "а": "a", "в": "b", "е": "e", "ё": "e", "һ": "h", "н": "h", "і": "i", "ї": "i", "ј": "j", "к": "k",
    "м": "m", "о": "o", "р": "p", "с": "c", "ѕ": "s", "т": "t", "у": "y", "х": "x", "ԁ": "d", "ԛ": "q",
    "ԝ": "w", "ӏ": "l", "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v", "ο": "o",
    "ρ": "p", "τ": "t", "υ": "u", "χ": "x", "ω": "w",
})
# ASCII look-alikes, to one form; applied after case folding, so I and l and 1 and i are one letter.
LOOKALIKES = str.maketrans({"0": "o", "1": "l", "i": "l", "|": "l", "!": "l", "_": None, "-": None})
SEQUENCES = (("rn", "m"), ("vv", "w"))


def skeleton(name: str) -> str:
    """What ``name`` looks like, for comparison only."""
    text = unicodedata.normalize("NFKD", name.casefold())
    text = "".join(c for c in text if not unicodedata.combining(c))
    text = text.translate(HOMOGLYPHS).translate(LOOKALIKES)
    for sequence, letter in SEQUENCES:
        text = text.replace(sequence, letter)
    return text


_RESERVED_SKELETONS = {skeleton(name): name for name in RESERVED_APP_NAMES}


def reserved(name: str) -> str | None:
    """Why ``name`` may not be an app's (it is, or looks like, a name the hub uses), or None."""
    taken = _RESERVED_SKELETONS.get(skeleton(name))
    if taken is None:
        return None
    like = "" if taken == name.casefold() else f" (it reads as {taken!r})"
    return f"{name!r} is reserved for {RESERVED_APP_NAMES[taken]}{like}; rename the app"
