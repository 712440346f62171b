"""Runs in: offline (inside the LlamaIndex port's own virtual environment, started by port.py).

Times the LlamaIndex port of SecGPT (PyPI ``llama-index-packs-secgpt``) against its own
baseline on the benchmark's queries, with an offline scripted LLM that waits as long as a
remote one would (helpers/llm/latency.py). Reads a request on stdin::

    {"queries": [[kind, query], ...], "latency": {"kind": ..., "fixed_ms": ..., "ttft_ms": ...,
     "ms_per_token": ...}, "query_timeout_s": 60, "pss": true}

and prints one JSON object on stdout: per query, the seconds and LLM calls of the port's hub
(``SecGPTPack.chat``) and of its baseline, timed one after the other, the first of each query
alternating; and, if asked, the PSS of one of the port's spokes while it works.

The baseline: the pack offers no non-isolated agent of its own. Its spokes and its no-app
answer are LlamaIndex ``ReActAgent``s, so the baseline is one ``ReActAgent`` holding every
tool in one context, on the same LLM.

The apps are small LlamaIndex tools written here (ride fares, a unit converter, a mailbox held
in memory), one tool per app: the pack gives each tool its own spoke.

Must never: import this project's modules other than helpers/llm/latency.py (stdlib only). This
environment holds the port's pins (llama-index-core 0.12, langchain-core < 0.2), none of the
core install's packages.
"""

from __future__ import annotations

import ast
import json
import os
import re
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from helpers.llm.latency import LatencyModel, latency_model  # noqa: E402 - after the repo root is on the path

PACK = "llama-index-packs-secgpt"
PLANNER_MARK = "create a sequential workflow"   # the pack's planner prompt says so
ROUTE = re.compile(r"from (?P<start>[A-Z][^,]+?) to (?P<end>[A-Z][^,?.]+?)(?= and |[,?.]|$)")
CONVERT = re.compile(r"(?P<value>\d+(?:\.\d+)?) (?P<src>[a-z]+) to (?P<dst>[a-z]+)")
MAIL_TO = re.compile(r"email it to (?P<to>[^\s@]+@[^\s]+?)\.?$")
SEARCH = re.compile(r"[Ss]earch my email for (?:the )?(?P<query>\w+)")
CALLED = re.compile(r"^Action: (\w+)", re.MULTILINE)
RESPONSE_FROM = re.compile(r"^Response from (\w+): ")
OFFERED = re.compile(r"^> Tool Name: (\w+)", re.MULTILINE)
DIRECT_CALL = re.compile(r"^(?P<name>\w+)\((?P<args>\{.*\})\)$", re.DOTALL)   # how a spoke is asked by another
CHAT_ANSWER = "Here you are: a short, friendly answer."
# The core benchmark's query kinds this script answers; a kind added there and not here is reported
# as not run rather than answered by whatever rule happens to match.
KINDS = ("no app", "one app", "two apps", "dependent", "cross-app")
UNAVAILABLE = 3   # exit status: the port cannot be imported here


# ---- the apps --------------------------------------------------------------------------------

RIDE_RATES = {"metro_hail": ("MetroHail", 14, 1.8), "quick_ride": ("QuickRide", 15, 2.0)}
FACTORS = {("km", "mi"): 0.621371, ("mi", "km"): 1.609344, ("kg", "lb"): 2.204623, ("lb", "kg"): 0.453592}
MAILBOX = [{"from": "billing@shop.example", "subject": "Your invoice", "body": "Please pay by Friday."}]


def _fare(app: str, start_point: str, end_point: str) -> str:
    brand, base, per_char = RIDE_RATES[app]
    price = base + per_char * (len(start_point) + len(end_point))
    return f"{brand} fare from {start_point} to {end_point}: ${price:.2f}"


def metro_hail(start_point: str, end_point: str) -> str:
    """MetroHail: the fare of a ride from start_point to end_point."""
    return _fare("metro_hail", start_point, end_point)


def quick_ride(start_point: str, end_point: str) -> str:
    """QuickRide: the fare of a ride from start_point to end_point."""
    return _fare("quick_ride", start_point, end_point)


def convert_units(value: float, from_unit: str, to_unit: str) -> str:
    """Converts a value between km and mi, or kg and lb."""
    if (from_unit, to_unit) not in FACTORS:
        return f"I cannot convert {from_unit} to {to_unit}."
    return f"{value} {from_unit} = {float(value) * FACTORS[from_unit, to_unit]:.2f} {to_unit}"


def search_gmail(query: str) -> str:
    """Searches the user's email for messages matching the query."""
    found = [m for m in MAILBOX if query.lower() in (m["subject"] + " " + m["body"]).lower()]
    return "\n".join(f"From: {m['from']} | Subject: {m['subject']} | {m['body']}" for m in found) \
        or "No messages found."


def send_gmail_message(to: str, subject: str, message: str) -> str:
    """Sends an email message to the given address."""
    MAILBOX.append({"from": "me", "to": to, "subject": subject, "body": message})
    return f"Message sent. Message Id: m{len(MAILBOX)}"


APPS = (metro_hail, quick_ride, convert_units, search_gmail, send_gmail_message)


# ---- the scripted model ----------------------------------------------------------------------

def plan(query: str) -> dict:
    """The plan the pack's planner is given for a query: the same steps as the core benchmark's."""
    route = ROUTE.search(query)
    ride = {"start_point": route["start"], "end_point": route["end"]} if route else None
    # The pack groups a step with the one whose output it takes by "<output>" references.
    if ride and "Compare" in query:
        return {"steps": [{"name": "metro_hail", "input": ride, "output": "result_1"},
                          {"name": "quick_ride", "input": ride, "output": "result_2"}]}
    if ride and (to := MAIL_TO.search(query)):
        return {"steps": [{"name": "metro_hail", "input": ride, "output": "result_1"},
                          {"name": "send_gmail_message", "input": {"to": to["to"], "subject": "Fare",
                                                                   "message": "<result_1>"}, "output": "result_2"}]}
    if ride and "metro_hail" in query:
        return {"steps": [{"name": "metro_hail", "input": ride, "output": "result_1"}]}
    if "unit converter" in query and (c := CONVERT.search(query)):
        return {"steps": [{"name": "convert_units", "input": {"value": float(c["value"]), "from_unit": c["src"],
                                                              "to_unit": c["dst"]}, "output": "result_1"}]}
    if s := SEARCH.search(query):
        return {"steps": [{"name": "search_gmail", "input": {"query": s["query"]}, "output": "result_1"}]}
    return {"steps": []}


def _act(name: str, args: dict) -> str:
    return f"Thought: I need to use a tool to help me answer the question.\nAction: {name}\n" \
           f"Action Input: {json.dumps(args)}"


def _answer(text: str) -> str:
    return f"Thought: I can answer without using any more tools.\nAnswer: {text}"


def react_step(system: str, turn: list[tuple[str, str]]) -> str:
    """A ReAct agent's next step, from its system prompt (the tools it is offered) and this turn
    of the chat: the user's query (or another spoke's request), then its own steps and their
    observations. What a competent model would do: call each tool the query needs, once, in
    order, and answer from what the tools returned."""
    offered = set(OFFERED.findall(system))
    query = turn[0][1]
    steps = "\n".join(content for role, content in turn[1:] if role == "assistant")
    observations = [content.removeprefix("Observation: ") for role, content in turn[1:] if role == "user"]
    # A spoke's call to another app shows as its message_spoke step, answered "Response from APP: ..."
    called = (set(CALLED.findall(steps)) - {"message_spoke"}) | {
        m[1] for o in observations if (m := RESPONSE_FROM.match(o))}

    def may_call(name: str) -> bool:
        return name in offered and name not in called

    if (direct := DIRECT_CALL.match(query.strip())) and may_call(direct["name"]):
        return _act(direct["name"], _literal(direct["args"]))
    route = ROUTE.search(query)
    ride = {"start_point": route["start"], "end_point": route["end"]} if route else None
    if ride and "Compare" in query:
        for name in ("metro_hail", "quick_ride"):
            if may_call(name):
                return _act(name, ride)
    if ride and may_call("metro_hail") and "metro_hail" in query:
        return _act("metro_hail", ride)
    if "metro_hail" in called:
        if (to := MAIL_TO.search(query)) and may_call("send_gmail_message"):
            fare = next((o for o in observations if "fare" in o), "")
            return _act("send_gmail_message", {"to": to["to"], "subject": "Fare",
                                               "message": RESPONSE_FROM.sub("", fare, count=1)})
        if ride and "ask quick_ride" in query and may_call("quick_ride"):
            return _act("quick_ride", ride)
    if "unit converter" in query and (c := CONVERT.search(query)) and may_call("convert_units"):
        return _act("convert_units", {"value": float(c["value"]), "from_unit": c["src"], "to_unit": c["dst"]})
    if (s := SEARCH.search(query)) and may_call("search_gmail"):
        return _act("search_gmail", {"query": s["query"]})
    if observations:
        return _answer(" ".join(RESPONSE_FROM.sub("", o, count=1) for o in observations))
    return _answer(CHAT_ANSWER)


def _literal(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = ast.literal_eval(text)   # the pack writes a request body with Python's repr
    return dict(value)


def current_turn(messages: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """The messages from the last query on: the chat history before it (earlier queries, data
    the hub shares) is not what this step answers."""
    start = 0
    for i, (role, content) in enumerate(messages):
        if role == "user" and not content.startswith(("Observation:", "Data shared by the user:")):
            start = i
    return list(messages[start:])


def scripted_reply(messages: Sequence[tuple[str, str]]) -> str:
    system = "\n".join(content for role, content in messages if role == "system")
    if PLANNER_MARK in system:
        query = messages[-1][1].rpartition("Query: ")[2]
        return json.dumps(plan(query))
    return react_step(system, current_turn([m for m in messages if m[0] != "system"]))


# ---- the LLM and the run ---------------------------------------------------------------------

def build_llm(latency: LatencyModel, calls_log: Path, pss_log: Path):
    """A LlamaIndex LLM that answers from the script after the simulated latency. Every call
    appends its process id to ``calls_log`` (the pack's spokes are forked processes, so a counter
    in memory would miss their calls); when ``pss_log`` exists, a call made in a spoke also
    appends that process's PSS to it."""
    from llama_index.core.base.llms.types import (
        ChatMessage,
        ChatResponse,
        CompletionResponse,
        CompletionResponseGen,
        LLMMetadata,
    )
    from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
    from llama_index.core.llms.custom import CustomLLM

    hub_pid = os.getpid()

    class ScriptedLLM(CustomLLM):
        @property
        def metadata(self) -> LLMMetadata:
            return LLMMetadata(model_name="scripted", is_chat_model=True, context_window=128_000,
                               num_output=1024)

        def _reply(self, messages: Sequence[tuple[str, str]]) -> str:
            text = scripted_reply(messages)
            with open(calls_log, "a") as log:
                log.write(f"{os.getpid()}\n")
            if os.getpid() != hub_pid and pss_log.exists():
                with open(pss_log, "a") as log:
                    log.write(f"{pss_kb(os.getpid())}\n")
            time.sleep(latency.seconds(text))
            return text

        @llm_chat_callback()
        def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
            text = self._reply([(str(m.role.value), m.content or "") for m in messages])
            return ChatResponse(message=ChatMessage(role="assistant", content=text))

        @llm_completion_callback()
        def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
            return CompletionResponse(text=self._reply([("user", prompt)]))

        @llm_completion_callback()
        def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
            response = self.complete(prompt, formatted=formatted)
            yield response

    return ScriptedLLM()


def pss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    raise RuntimeError("no Pss line in smaps_rollup")


def _lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


class QueryTimeout(Exception):
    pass


def _alarm(signum, frame):
    raise QueryTimeout


def main() -> int:
    request = json.loads(sys.stdin.read())
    lat = request["latency"]
    latency = latency_model(lat["kind"], lat.get("fixed_ms", 0.0), lat.get("ttft_ms"), lat.get("ms_per_token"))
    limit = int(request.get("query_timeout_s", 60))
    try:
        import llama_index.packs.secgpt  # noqa: F401 - only to say the install is broken before anything else
    except Exception as exc:   # ImportError, or a pinned library that fails on import
        print(f"cannot import llama_index.packs.secgpt ({type(exc).__name__}: {exc})".splitlines()[0], file=sys.stderr)
        return UNAVAILABLE
    out = os.fdopen(os.dup(1), "w")
    # The pack prints as it works (permission dialogues, its planner pipeline, "Using ... spoke");
    # its spokes are forks that inherit this descriptor: all of it goes to stderr, stdout is ours.
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    with tempfile.TemporaryDirectory(prefix="secgpt-port-") as work:
        os.chdir(work)   # the pack keeps its permissions in ./permissions.json
        result = run(request["queries"], latency, Path(work), limit, bool(request.get("pss", True)))
    out.write(json.dumps(result) + "\n")
    out.flush()
    return 0


def grant_everything(names: Sequence[str]) -> None:
    """The benchmark answers every permission dialogue "Always allow" (the core benchmark runs
    with consent=all): the pack's permission file, written as its dialogue would."""
    apps = list(names) + [f"{a}->{b}" for a in names for b in names if a != b]
    grants = {app: {kind: "permanent" for kind in ("exec", "data", "collab")} for app in apps}
    Path("permissions.json").write_text(json.dumps({"0": grants}))


def run(queries: list[list[str]], latency: LatencyModel, work: Path, limit: int, measure_pss: bool) -> dict:
    from llama_index.core import Settings
    from llama_index.core.agent import ReActAgent
    from llama_index.core.tools import FunctionTool
    from llama_index.packs.secgpt import SecGPTPack

    grant_everything([f.__name__ for f in APPS])
    logs = {name: work / f"{name}.calls" for name in ("port", "baseline")}
    pss_log = work / "spoke.pss"
    port_llm, baseline_llm = (build_llm(latency, logs[n], pss_log) for n in ("port", "baseline"))
    Settings.llm = port_llm   # the pack's spokes and its no-app answer take the default LLM
    pack = SecGPTPack([FunctionTool.from_defaults(fn=f) for f in APPS], [], llm=port_llm)
    baseline = ReActAgent.from_tools([FunctionTool.from_defaults(fn=f) for f in APPS], llm=baseline_llm)
    systems = {"port": pack.chat, "baseline": lambda q: str(baseline.chat(q))}
    signal.signal(signal.SIGALRM, _alarm)
    hub_pid = str(os.getpid())

    rows, not_run = [], []
    for i, (kind, query) in enumerate(queries):
        if kind not in KINDS:
            not_run.append({"kind": kind, "query": query, "reason": "the port's driver has no script for this kind"})
            continue
        row: dict[str, Any] = {"kind": kind, "query": query}
        for name in (("port", "baseline") if i % 2 == 0 else ("baseline", "port")):
            before = len(_lines(logs[name]))
            signal.alarm(limit)
            started = time.perf_counter()
            try:
                answer = str(systems[name](query))
            except QueryTimeout:
                row[name] = {"error": f"no answer within {limit} s"}
                continue
            except Exception as exc:   # the port's failure is a result to report, not a crash of the run
                row[name] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
                continue
            finally:
                signal.alarm(0)
            seconds = time.perf_counter() - started
            pids = _lines(logs[name])[before:]
            row[name] = {"seconds": seconds, "llm_calls": len(pids), "answer": answer[:400],
                         "spoke_processes": len(set(pids) - {hub_pid})}
        rows.append(row)

    pss = None
    if measure_pss:   # after the timed runs, so reading /proc costs them nothing
        pss_log.touch()
        probe = next((q for k, q in queries if k == "one app"), None)
        if probe is not None:
            signal.alarm(limit)
            try:
                pack.chat(probe)
            except Exception:   # QueryTimeout too: no figure then, and the timed rows still stand
                pass
            finally:
                signal.alarm(0)
            readings = [int(v) for v in _lines(pss_log)]
            pss = round(max(readings) / 1024, 1) if readings else None
    return {"port": f"{PACK} {metadata.version(PACK)}",
            "llama_index_core": metadata.version("llama-index-core"),
            "baseline": "a LlamaIndex ReActAgent holding every tool in one context (the pack has no baseline of its "
                        "own; its spokes are ReActAgents)",
            "latency": latency.as_dict(), "rows": rows, "not_run": not_run, "spoke_pss_mb": pss}


if __name__ == "__main__":
    sys.exit(main())
