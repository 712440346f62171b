"""Runs in: hub.

The hub: one user's SecGPT session.

Holds everything trusted (the LLM and its key, memory, permissions, the audit
log), plans each query, and hands it to the operator, which runs it in spokes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from helpers.configs import paths
from helpers.configs.isolation import ISOLATION_MODES, IsolationMode
from helpers.isc.messages import PlanStep
from helpers.llm.agent import opening
from helpers.llm.client import LLMClient
from helpers.llm.config import LLMConfig
from helpers.llm.interface import ChatModel, chat_history
from helpers.llm.models import make_chat_model
from helpers.memory.extraction import remember_turn
from helpers.memory.redis_server import MemoryBackend
from helpers.memory.store import MemoryStore
from helpers.permission.prompt import ConsentMode, Decision, PermissionManager, PermissionRequest
from helpers.permission.store import Category, PermissionStore
from helpers.sandbox.http_broker import HttpBroker
from helpers.sandbox.launcher import SpokeLauncher
from helpers.templates import prompts
from helpers.tools.retrieval import Retriever
from helpers.tools.tool_importer import ToolImporter
from helpers.utilities.errors import ConfigError, LLMError, MemoryUnavailable
from helpers.utilities.session import Answer, PermissionRecord, SessionInfo, SessionStats
from hub import budget
from hub.audit import AuditLog
from hub.broker import SpokeBroker
from hub.effects import SideEffects
from hub.hub_operator import HubOperator
from hub.planner import Planner
from hub.policy import VANILLA, FaithfulPolicy
from hub.strict_policy import StrictPolicy

Emit = Callable[[str, str], None]
HUB_NAMESPACE = "hub"


class Hub:
    """SecGPT's ``Session`` (helpers/utilities/session.py)."""

    def __init__(self, llm: LLMConfig, user_id: str = "0", consent: ConsentMode = "ask",
                 functionalities: Path | None = None, read: Callable[[str], str] = input,
                 write: Callable[[str], None] = print, emit: Emit | None = None,
                 redis_url: str | None = None, importer: ToolImporter | None = None,
                 launcher: SpokeLauncher | None = None, http: HttpBroker | None = None,
                 chat_model: ChatModel | None = None, isolation: IsolationMode = "faithful") -> None:
        """``chat_model`` replaces the model ``llm`` describes (an evaluation's own worst-case model);
        ``isolation`` is the mode (``helpers.configs.isolation``)."""
        if isolation not in ISOLATION_MODES:
            raise ConfigError(f"isolation mode {isolation!r} is unknown: use faithful or strict")
        self.isolation = isolation
        self.user = str(user_id)
        self.llm_config = llm
        self.consent = consent
        self.read, self.write = read, write
        self.emit: Emit = emit or (lambda kind, text: None)
        self.importer = importer or (ToolImporter(functionalities) if functionalities else ToolImporter())
        # Each call charged to the app it is made for (hub.budget); failures told to the audit log
        # (the operator hands it over at start).
        self.llm = LLMClient(chat_model or make_chat_model(llm), charge=budget.charge_llm)
        self.store = PermissionStore(paths.perm_file())
        self.permissions = PermissionManager(self.store, consent, read, write, on_decision=self._decided)
        self._memory_backend = MemoryBackend(redis_url)
        self.audit = AuditLog.in_dir(paths.audit_dir())
        # Where this session's part of the audit log starts: the day's log may hold earlier sessions.
        self._audit_start = self.audit.path.stat().st_size if self.audit.path else 0
        self._permission_log: list[PermissionRecord] = []
        # A launcher passed in is shared (e.g. by a benchmark) and stays running after close().
        self._owns_launcher = launcher is None
        self.launcher = launcher or SpokeLauncher()
        self.memory: MemoryStore | None = None
        self.operator: HubOperator | None = None
        self._http = http
        self.planner = Planner(self.llm, signatures_only=isolation == "strict")
        self.retriever = Retriever([self.importer.functionality(n) for n in self.importer.all_functionalities()])

    # --- life cycle ------------------------------------------------------------------------------------
    def start(self) -> Hub:
        try:
            self.memory = MemoryStore(self._memory_backend.start(), self.user)
            self.store.start_session(self.user)
            if self._owns_launcher:
                self.launcher.start()
        except BaseException:
            self.close()
            raise
        broker = SpokeBroker(self.launcher, self.audit, self._http)
        policy = (StrictPolicy if self.isolation == "strict" else FaithfulPolicy)(
            self.importer.owner, SideEffects(self.importer))
        self.operator = HubOperator(broker, self.importer, self.permissions, self.memory, self.llm,
                                    self.user, self.emit, policy=policy)
        return self

    def close(self) -> None:
        if self.operator is not None:
            self.operator.broker.close()
            self.operator = None
        if self._owns_launcher:
            self.launcher.close()
        self._memory_backend.close()
        self.audit.close()

    def __enter__(self) -> Hub:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def cancel(self) -> None:
        """After an interrupted answer: stop every spoke (they restart on demand)."""
        if self.operator is not None:
            self.operator.stop_all("answer cancelled by the user")

    # --- what the session tells its callers (the Session interface) ---------------------------------------
    @property
    def info(self) -> SessionInfo:
        return SessionInfo(system="SecGPT", isolation=self.isolation, asks_permissions=True, plans=True)

    def stats(self) -> SessionStats:
        started, used = (self.operator.prefetches_started, self.operator.prefetches_used) if self.operator else (0, 0)
        return SessionStats(llm_calls=self.llm.calls, prompt_chars=self.llm.prompt_chars,
                            prefetched=started, prefetches_used=used)

    def permission_log(self) -> list[PermissionRecord]:
        return list(self._permission_log)

    def llm_contexts(self) -> dict[str, list[str]]:
        """Read from this session's part of the audit log, where the hub records every
        ``llm_request`` a spoke sent (as far as the app's audit budget let it be kept)."""
        contexts: dict[str, list[str]] = {}
        if self.audit.path is None:
            return contexts
        with open(self.audit.path, "rb") as log:
            log.seek(self._audit_start)
            for line in log:
                entry = json.loads(line) if line.strip() else {}
                if entry.get("event") == "from_spoke" and entry["message"]["type"] == "llm_request":
                    m = entry["message"]
                    texts = [x["content"] for x in m["messages"]] + [t["description"] for t in m["tools"]]
                    contexts.setdefault(entry["app"], []).append("\n".join(map(_logged, texts)))
        return contexts

    def grants(self) -> dict[str, dict[str, str]]:
        return dict(self.store.load().get(self.user, {}))

    def revoke(self, key: str, category: Category | None = None) -> bool:
        return self.store.revoke(self.user, key, category)

    # --- one query ---------------------------------------------------------------------------------------
    def answer(self, query: str) -> Answer:
        if self.operator is None or self.memory is None:
            raise RuntimeError("call start() first")
        self.operator.begin_query()
        try:
            history = chat_history(self._planner_history())
            candidates = self.retriever.candidates(query)
            if not self.retriever.relevant(query):
                self._prefetch_no_app_answer(query)
            plan = self.planner.plan(query, candidates, history)
            notes = [plan.note] if plan.note else []
            self.emit("plan", _describe(plan.steps))
            avoid: set[str] = set()
            while True:
                run = self.operator.execute(query, plan.steps)
                if run.refused is None:
                    text = run.text or ""
                    break
                avoid.add(run.refused)
                if not self._offer_replan(run.refused):
                    text = f"Understood: I did not use {run.refused}, so I could not complete this request."
                    break
                plan = self.planner.plan(query, candidates, history, avoid=avoid)
                self.emit("plan", "re-planned: " + _describe(plan.steps))
            notes += run.notes
            if self.permissions.capped:
                notes.append(f"After {self.permissions.asked} questions, {self.permissions.capped} more "
                             "operation(s) the plan did not expect were refused without asking you.")
            if notes:
                text = f"{text}\n({' '.join(notes)})"
            self._remember(query, text)
            return self._answered(Answer(text, plan.steps, run.route, notes))
        except (LLMError, MemoryUnavailable) as exc:
            self.operator.failed(exc)
            return self._answered(Answer(f"Sorry, {exc}.", notes=[str(exc)]))
        finally:
            self.operator.prefetch = None  # made for this query's request only

    def _prefetch_no_app_answer(self, query: str) -> None:
        """No installed app matches the query: start the vanilla spoke's call now, beside the planner's
        (``hub.prefetch``). It holds what that spoke will send: its instructions, the hub's memory, the
        query; no app's text."""
        messages = opening(prompts.VANILLA_SPOKE, chat_history(self.memory.context(HUB_NAMESPACE)), query)
        self.operator.start_prefetch(VANILLA, messages)
        self.emit("llm", "no installed app matches the request: its no-app answer is started beside the planner")

    def _answered(self, answer: Answer) -> Answer:
        answer.error = self.operator.failure
        if answer.error is not None:
            self.emit("error", str(answer.error))
        return answer

    def _planner_history(self) -> list[dict]:
        """What the planner reads of earlier turns. Faithful: the summary and the recent
        messages, answers included (the paper's). Strict: the user's own messages only: an answer
        carries app output, which must never decide a later plan."""
        if self.isolation == "strict":
            return [m for m in self.memory.history(HUB_NAMESPACE) if m.get("role") == "user"]
        return self.memory.context(HUB_NAMESPACE)

    def _offer_replan(self, app: str) -> bool:
        if self.consent != "ask":
            return False
        answer = self.read(f"The plan needs {app}, which you did not allow. Re-plan without it? (y/n): ")
        return answer.strip().lower() in ("y", "yes")

    def _remember(self, query: str, text: str) -> None:
        remember_turn(self.memory, HUB_NAMESPACE, self.llm.model_for("memory"), query, text)

    def _decided(self, request: PermissionRequest, decision: Decision) -> None:
        verdict = "allowed" if decision.allowed else "refused"
        self._permission_log.append(PermissionRecord(category=request.category, key=request.key,
                                                     expected=request.expected, allowed=decision.allowed,
                                                     source=decision.source))
        self.audit.record("permission", user=request.user, key=request.key, category=request.category,
                          functionalities=list(request.functionalities), expected=request.expected,
                          allowed=decision.allowed, scope=decision.scope, source=decision.source,
                          details=request.details, warning=request.warning)
        bound = f" ({', '.join(request.functionalities)})" if request.functionalities else ""
        self.emit("permission", f"{request.category} {request.key}{bound}: {verdict} ({decision.source}"
                                f"{', ' + decision.scope if decision.scope else ''}"
                                f"{'' if request.expected else ', NOT expected by the plan'})")


def _logged(value: str | dict) -> str:
    """A string as the audit log keeps it: a long one is kept as its digest, of which only the head is text."""
    return value if isinstance(value, str) else value["head"]


def _describe(steps: list[PlanStep]) -> str:
    if not steps:
        return "no app needed"
    return "; ".join(f"{i}. {s.name}({s.input})" for i, s in enumerate(steps, 1))
