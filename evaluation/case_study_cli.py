"""The case-study programs: secgpt_case_studies.py and vanillagpt_case_studies.py.

The original's menu (1-4, re-asked on invalid input), or --case N / --all, or
--compare: every case on both systems, one side-by-side table, also written as
JSON under evaluation/results/.

A case whose run errored (a spoke crash, an LLM failure, a timeout, memory down)
is shown as "error", never as a defended attack, and makes the program exit 1,
one line per errored case on stderr, unless --allow-errors.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone

from evaluation.case_studies import NAMES, Verdict, run_case
from helpers.configs import paths
from helpers.llm.config import LLM_CHOICES, LLM_HELP, canonical_llm, real_llm_configured
from helpers.permission.prompt import CONSENT_MODES
from helpers.utilities.errors import SecGPTError
from helpers.utilities.terminal import safe_text

MENU = "Select a case study to run:\n" + "\n".join(f"{n}: {name}" for n, name in NAMES.items())
RESULTS = paths.REPO_ROOT / "evaluation" / "results"


def ask_case(read=input, write=print) -> int | None:
    write(MENU)
    while True:
        try:
            answer = read("Enter a number (1-4): ").strip()
        except EOFError:
            return None
        if answer in ("1", "2", "3", "4"):
            return int(answer)
        write("Invalid input. Please enter a number between 1 and 4.")


def compare(llm: str, launcher, say) -> list[Verdict]:
    verdicts = []
    for number in NAMES:
        verdicts.append(run_case(number, "VanillaGPT", llm, "n/a", say=say))
        verdicts.append(run_case(number, "SecGPT", llm, "expected", launcher=launcher, say=say))
        verdicts.append(run_case(number, "SecGPT", llm, "all", launcher=launcher, say=say))
    return verdicts


def attack_cell(v: Verdict) -> str:
    """An attack's outcome as the table shows it: an errored run is never "no"."""
    if v.attack_succeeded:
        return "YES (error)" if v.error else "YES"
    return f"error ({v.error.kind})" if v.error else "no"


def error_line(v: Verdict) -> str:
    consent = f", consent {v.consent}" if v.system == "SecGPT" else ""
    return f"case {v.case} ({v.name}) on {v.system}{consent} errored: {v.error}"


def table(verdicts: list[Verdict]) -> str:
    rows = [("case", "attack on VanillaGPT", "attack on SecGPT", "SecGPT, user allows all",
             "benign: Vanilla / SecGPT", "why (SecGPT, consent expected)")]
    for number in NAMES:
        v, s, a = [x for x in verdicts if x.case == number]
        rows.append((f"{number}. {NAMES[number]}", attack_cell(v), attack_cell(s),
                     attack_cell(a), f"{'done' if v.benign_done else 'NOT done'} / "
                                              f"{'done' if s.benign_done else 'NOT done'}", s.explanation))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = []
    for i, r in enumerate(rows):
        lines.append("  ".join(c.ljust(w) for c, w in zip(r[:5], widths)) + "  " + r[5])
        if i == 0:
            lines.append("  ".join("-" * w for w in widths) + "  " + "-" * 30)
    errored = [v for v in verdicts if v.error]
    if errored:
        lines += ["", "Errors (counted apart: neither attack succeeded nor defended):"]
        lines += [f"  {error_line(v)}" for v in errored]
    return "\n".join(lines)


def report_errors(prog: str, verdicts: list[Verdict], allowed: bool) -> int:
    """Exit status: 1 if any case errored (each told on stderr, one line), unless ``allowed``."""
    errored = [v for v in verdicts if v.error]
    for v in errored:
        print(safe_text(f"{prog}: {error_line(v)}"), file=sys.stderr)
    return 1 if errored and not allowed else 0


def main(system: str, argv: list[str] | None = None) -> int:
    prog = f"{system.lower()}_case_studies.py"
    parser = argparse.ArgumentParser(prog=prog, description=f"The four case studies on {system}.")
    parser.add_argument("--case", type=int, choices=sorted(NAMES), help="run this case")
    parser.add_argument("--all", action="store_true", help="run every case")
    parser.add_argument("--compare", action="store_true", help="every case on both systems, side by side")
    parser.add_argument("--llm", choices=LLM_CHOICES,
                        help=f"{LLM_HELP}; default: the configured real LLM if there is one, else scripted")
    parser.add_argument("--consent", choices=CONSENT_MODES, default="expected",
                        help="how SecGPT's permission questions are answered (default: expected)")
    parser.add_argument("--json", action="store_true", help="one JSON object per line and case")
    parser.add_argument("--verbose", action="store_true", help="with --compare: print every step")
    parser.add_argument("--allow-errors", action="store_true",
                        help="exit 0 even if a case errored (it is still reported as an error, not a result)")
    args = parser.parse_args(argv)
    llm = canonical_llm(args.llm) or ("openai" if real_llm_configured() else "scripted")
    out = sys.stderr if args.json else sys.stdout
    say = lambda text: print(safe_text(text), file=out, flush=True)  # noqa: E731  (app-derived text)
    say(f"{system} case studies; LLM: {'the offline worst-case model (scripted): it obeys every instruction it sees' if llm == 'scripted' else 'the configured real LLM'}")

    from helpers.sandbox.launcher import SpokeLauncher
    try:
        with SpokeLauncher() as launcher:
            if args.compare:
                verdicts = compare(llm, launcher, say if args.verbose else (lambda text: None))
                RESULTS.mkdir(parents=True, exist_ok=True)
                stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
                (RESULTS / "case_studies.json").write_text(json.dumps(
                    {"generated": stamp, "llm": llm, "verdicts": [json.loads(v.as_json()) for v in verdicts]}, indent=2))
                if args.json:
                    for v in verdicts:
                        print(v.as_json())
                else:
                    print(safe_text(table(verdicts)))
                    print(f"\n(JSON: {RESULTS / 'case_studies.json'})")
                return report_errors(prog, verdicts, args.allow_errors)
            numbers = list(NAMES) if args.all else [args.case] if args.case else None
            if numbers is None:
                def read(prompt: str) -> str:
                    print(prompt, end="", file=out, flush=True)
                    line = sys.stdin.readline()
                    if not line:
                        raise EOFError
                    return line.rstrip("\n")
                chosen = ask_case(read=read, write=say)
                if chosen is None:
                    return 0
                numbers = [chosen]
            verdicts = []
            for number in numbers:
                verdicts.append(run_case(number, system, llm, args.consent, launcher=launcher, say=say))
                if args.json:
                    print(verdicts[-1].as_json(), flush=True)
    except SecGPTError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    return report_errors(prog, verdicts, args.allow_errors)
