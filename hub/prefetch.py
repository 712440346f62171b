"""Runs in: hub.

The no-app answer, started beside the planner.

A query that needs no app is answered by the vanilla spoke, whose one LLM call is known before
the plan is: the vanilla instructions, the hub's memory and the query, with no tools and no
app's text. When no installed app matches the query (``Retriever.relevant``), the hub starts
that call at the same time as the planner's, so such a query waits for one LLM round trip, as
on VanillaGPT, instead of two in a row. When the vanilla spoke then asks for exactly that call,
it is handed the reply; a plan with steps leaves it unused (one call wasted, counted).

Must never: hand a reply to any request but the one it was made for (same spoke, same
messages, same tools, once), or start a call that holds any app's text.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence

from helpers.isc.messages import ChatMessage, ToolSpec
from helpers.llm.client import LLMClient


class Prefetch:
    """One LLM call made ahead for ``spoke``, running in a thread of its own."""

    def __init__(self, llm: LLMClient, spoke: str, messages: Sequence[ChatMessage],
                 tools: Sequence[ToolSpec] = ()) -> None:
        self.spoke = spoke
        self.taken = False
        self._key = _key(messages, tools)
        self._done = threading.Event()
        self._reply: ChatMessage | None = None
        self._error: BaseException | None = None
        threading.Thread(target=self._run, args=(llm, list(messages), list(tools)), daemon=True,
                         name=f"prefetch-{spoke}").start()

    def _run(self, llm: LLMClient, messages: list[ChatMessage], tools: list[ToolSpec]) -> None:
        try:
            self._reply = llm.complete(messages, tools, purpose=self.spoke)
        except BaseException as exc:  # noqa: BLE001 - handed to the request that takes it, raised there
            self._error = exc
        finally:
            self._done.set()

    def take(self, spoke: str, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec] = ()) -> ChatMessage | None:
        """The reply, if this is the request it was made for and it was not taken yet (waits for it;
        its failure is raised here, as the call's own would be); otherwise None."""
        if self.taken or spoke != self.spoke or _key(messages, tools) != self._key:
            return None
        self.taken = True
        self._done.wait()  # bounded by the LLM client's own timeout, as a call made now would be
        if self._error is not None:
            raise self._error
        return self._reply

    def wait(self, timeout: float | None = None) -> bool:
        """Whether the call has finished (for tests and a clean close)."""
        return self._done.wait(timeout)


def _key(messages: Sequence[ChatMessage], tools: Sequence[ToolSpec]) -> str:
    """The whole request, as one exact string: any difference at all makes another request."""
    return json.dumps([[m.model_dump(mode="json") for m in messages], [t.model_dump(mode="json") for t in tools]],
                      sort_keys=True, ensure_ascii=False)
