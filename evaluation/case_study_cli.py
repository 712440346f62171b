"""Runs in: hub, vanillagpt (the evaluation's driver, beside the system under test).

The case-study programs: secgpt_case_studies.py and vanillagpt_case_studies.py.

The original's menu (now 1-8, re-asked on invalid input), or --case N / --all, or
--compare: every case on VanillaGPT and on SecGPT in each isolation mode, with the
user refusing what the plan did not expect and allowing everything, one side-by-side
table, also written as JSON under evaluation/results/.

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
from helpers.configs.isolation import ISOLATION_HELP, isolation_mode
from helpers.llm.config import LLM_CHOICES, LLM_HELP, canonical_llm, real_llm_configured
from helpers.permission.prompt import CONSENT_MODES
from helpers.utilities.errors import SecGPTError
from helpers.utilities.terminal import safe_text

MENU = "Select a case study to run:\n" + "\n".join(f"{n}: {name}" for n, name in NAMES.items())
RESULTS = paths.REPO_ROOT / "evaluation" / "results"
FIRST, LAST = min(NAMES), max(NAMES)

# The columns of --compare, in order: (heading, system, isolation, consent). "expected": a user
# who approves what the plan expected and refuses the rest; "all": one who allows everything.
COLUMNS = (("VanillaGPT", "VanillaGPT", "faithful", "n/a"),
           ("SecGPT faithful", "SecGPT", "faithful", "expected"),
           ("SecGPT strict", "SecGPT", "strict", "expected"),
           ("faithful, user allows all", "SecGPT", "faithful", "all"),
           ("strict, user allows all", "SecGPT", "strict", "all"))


def ask_case(read=input, write=print) -> int | None:
    write(MENU)
    while True:
        try:
            answer = read(f"Enter a number ({FIRST}-{LAST}): ").strip()
        except EOFError:
            return None
        if answer.isdigit() and int(answer) in NAMES:
            return int(answer)
        write(f"Invalid input. Please enter a number between {FIRST} and {LAST}.")


def compare(llm: str, launcher, say) -> list[Verdict]:
    """Every case in every column: per case, one verdict per ``COLUMNS`` entry, in that order."""
    return [run_case(number, system, llm, consent, launcher=launcher, say=say, isolation=isolation)
            for number in NAMES for _, system, isolation, consent in COLUMNS]


def attack_cell(v: Verdict) -> str:
    """An attack's outcome as the table shows it: an errored run is never "no"."""
    if v.attack_succeeded:
        return "YES (error)" if v.error else "YES"
    return f"error ({v.error.kind})" if v.error else "no"


def error_line(v: Verdict) -> str:
    mode = f", isolation {v.isolation}, consent {v.consent}" if v.isolation != "n/a" else ""
    return f"case {v.case} ({v.name}) on {v.system}{mode} errored: {v.error}"


def table(verdicts: list[Verdict]) -> str:
    """Attack cells, one column per ``COLUMNS`` entry; then whether the benign task was done
    (same order); then why, for SecGPT faithful with consent expected."""
    headings = [heading for heading, *_ in COLUMNS]
    rows = [("case", *headings, "benign done (same order)", "questions faithful/strict",
             f"why ({headings[1]}, consent expected)")]
    for number in NAMES:
        row = [x for x in verdicts if x.case == number]
        rows.append((f"{number}. {NAMES[number]}", *(attack_cell(x) for x in row),
                     " / ".join("done" if x.benign_done else "NOT" for x in row),
                     f"{row[1].questions} / {row[2].questions}" if len(row) > 2 else "",
                     row[1].explanation if len(row) > 1 else ""))
    shown = len(rows[0]) - 1
    widths = [max(len(r[i]) for r in rows) for i in range(shown)]
    lines = []
    for i, r in enumerate(rows):
        lines.append("  ".join(c.ljust(w) for c, w in zip(r[:shown], widths, strict=True)) + "  " + r[shown])
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
    parser = argparse.ArgumentParser(prog=prog, description=f"The case studies on {system}.")
    parser.add_argument("--case", type=int, choices=sorted(NAMES), help="run this case")
    parser.add_argument("--all", action="store_true", help="run every case")
    parser.add_argument("--compare", action="store_true",
                        help="every case on VanillaGPT and on SecGPT in each isolation mode, side by side")
    parser.add_argument("--isolation", metavar="faithful|strict",
                        help=f"SecGPT's isolation mode: {ISOLATION_HELP}")
    parser.add_argument("--llm", choices=LLM_CHOICES,
                        help=f"{LLM_HELP}; default: the configured real LLM if there is one, else scripted")
    parser.add_argument("--consent", choices=CONSENT_MODES, default="expected",
                        help="how SecGPT's permission questions are answered (default: expected)")
    parser.add_argument("--json", action="store_true", help="one JSON object per line and case")
    parser.add_argument("--verbose", action="store_true", help="with --compare: print every step")
    parser.add_argument("--allow-errors", action="store_true",
                        help="exit 0 even if a case errored (it is still reported as an error, not a result)")
    args = parser.parse_args(argv)
    try:
        isolation = isolation_mode(args.isolation)
    except SecGPTError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    llm = canonical_llm(args.llm) or ("openai" if real_llm_configured() else "scripted")
    out = sys.stderr if args.json else sys.stdout
    say = lambda text: print(safe_text(text), file=out, flush=True)  # noqa: E731  (app-derived text)
    model = ("the offline worst-case model (scripted): it obeys every instruction it sees" if llm == "scripted"
             else "the configured real LLM")
    say(f"{system} case studies; LLM: {model}")

    from helpers.sandbox.launcher import SpokeLauncher
    try:
        with SpokeLauncher() as launcher:
            if args.compare:
                verdicts = compare(llm, launcher, say if args.verbose else (lambda text: None))
                RESULTS.mkdir(parents=True, exist_ok=True)
                stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
                (RESULTS / "case_studies.json").write_text(json.dumps(
                    {"generated": stamp, "llm": llm,
                     # Each column as its first case ran it (VanillaGPT has no isolation mode nor consent).
                     "columns": [{"heading": h, "system": v.system, "isolation": v.isolation, "consent": v.consent}
                                 for (h, *_), v in zip(COLUMNS, verdicts, strict=False)],
                     "verdicts": [json.loads(v.as_json()) for v in verdicts]}, indent=2))
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
                verdicts.append(run_case(number, system, llm, args.consent, launcher=launcher, say=say,
                                     isolation=isolation))
                if args.json:
                    print(verdicts[-1].as_json(), flush=True)
    except SecGPTError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    return report_errors(prog, verdicts, args.allow_errors)
