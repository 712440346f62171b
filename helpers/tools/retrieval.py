"""Runs in: hub.

Which installed functionalities might a query need? Only those reach the planner.

Offline and fast: a BM25 score over each functionality's name, app and
description, computed from an index built once. Functionalities named in the
query are always kept. Up to ``LIST_ALL_UP_TO`` installed functionalities are all
listed; with hundreds of apps installed the planner prompt stays the size of
``limit`` candidates.

``relevant`` says whether any installed functionality might serve a query at all (one is
named in it, or shares a word with it): when none does, the hub starts the no-app answer
beside the planner (``hub.prefetch``). It errs towards "relevant": a wrong "relevant" only
costs the time it saves, a wrong "not relevant" one LLM call.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

from helpers.tools.tool_importer import Functionality

TOKEN = re.compile(r"[a-z0-9]+")
STOP = frozenset("a an and are as at be by can could do for from get how i in is it me my of on or please "
                 "the to use what with you your".split())
DEFAULT_LIMIT = 8
# A catalogue this small is listed whole: ranking it would only hide from the planner
# functionalities a query needs in words the ranking cannot see ("the article Bob posted"
# needs the web browser), and the whole list is still a short prompt.
LIST_ALL_UP_TO = 32
K1, B = 1.2, 0.75


def tokens(text: str) -> list[str]:
    out = []
    for t in TOKEN.findall(text.lower().replace("_", " ")):
        if t not in STOP and len(t) > 1:  # a lone letter ("what's" -> "s") matches any text
            out.append(t[:-1] if len(t) > 3 and t.endswith("s") else t)  # crude plural folding
    return out


@dataclass
class Retriever:
    functionalities: list[Functionality]

    def __post_init__(self) -> None:
        self._docs = [Counter(tokens(f"{f.name} {f.app} {f.description}")) for f in self.functionalities]
        self._lengths = [sum(d.values()) for d in self._docs]
        self._avg = (sum(self._lengths) / len(self._lengths)) if self._lengths else 1.0
        df: Counter = Counter()
        for d in self._docs:
            df.update(d.keys())
        n = len(self._docs)
        self._idf = {t: math.log(1 + (n - c + 0.5) / (c + 0.5)) for t, c in df.items()}

    def relevant(self, query: str) -> bool:
        """Whether some installed functionality is named in ``query`` or shares a word with it."""
        lowered = query.lower()
        if any(f.name.lower() in lowered or f.app.lower() in lowered for f in self.functionalities):
            return True
        terms = set(tokens(query))
        return any(not terms.isdisjoint(doc) for doc in self._docs)

    def candidates(self, query: str, limit: int = DEFAULT_LIMIT) -> list[Functionality]:
        if len(self.functionalities) <= LIST_ALL_UP_TO:
            return list(self.functionalities)
        lowered = query.lower()
        named = [f for f in self.functionalities if f.name.lower() in lowered or f.app.lower() in lowered]
        terms = tokens(query)
        scored = []
        for i, doc in enumerate(self._docs):
            score = 0.0
            for t in terms:
                tf = doc.get(t, 0)
                if tf:
                    score += self._idf[t] * tf * (K1 + 1) / (tf + K1 * (1 - B + B * self._lengths[i] / self._avg))
            if score > 0:
                scored.append((score, i))
        scored.sort(key=lambda x: (-x[0], x[1]))
        chosen: dict[str, Functionality] = {}
        for f in [*named, *(self.functionalities[i] for _, i in scored)]:
            chosen.setdefault(f.name, f)
        return list(chosen.values())[:max(limit, len(named))]
