"""Runs in: hub, vanillagpt (wherever text reaches the terminal).

Text for the user's terminal: what an app wrote, made inert before it is printed.

An app's answer, a permission dialog quoting an app's output, a debug line with a
plan the LLM wrote: any of them may carry terminal control sequences (OSC 52 writes
the clipboard, CSI 2J clears the screen so a fake dialog can be drawn, bidi controls
reorder what the user reads). ``safe_text`` removes them all: escape sequences whole,
then every C0 control but newline and tab, DEL, every C1 control, and the Unicode
bidi controls. Everything app-derived passes through it before it is printed.

Never returns a control character; never decides anything else about the text.
"""

from __future__ import annotations

import re

# Whole escape sequences first, so that their parameters ("52;c;...") do not remain as text.
_SEQUENCES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"                               # CSI (colours, cursor moves, clear screen)
    r"|\x9b[0-?]*[ -/]*[@-~]"                                # CSI, 8-bit form
    r"|[\x1b][\]PX^_][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)"  # OSC, DCS, SOS, PM, APC, up to BEL or ST
    r"|[\x90\x98\x9d\x9e\x9f][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)"  # the same, 8-bit forms
    r"|\x1b[ -/]*[0-~]"                                      # other escapes (charset, keypad, RIS...)
)

# What may never reach the terminal as a character, each class with why.
CONTROL_CLASSES: dict[str, str] = {
    "C0": "\x00-\x08\x0b-\x1f",   # NUL..BS, VT..US (ESC, CR, BEL included): all but TAB and LF
    "DEL": "\x7f",
    "C1": "\x80-\x9f",            # 8-bit CSI/OSC/DCS/ST and the rest
    "bidi": "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069",  # ALM, LRM/RLM, embeddings/overrides, isolates
}
_CONTROLS = re.compile("[" + "".join(CONTROL_CLASSES.values()) + "]")


def safe_text(text: object) -> str:
    """``text`` as a string with no escape sequence and no control character but ``\\n`` and ``\\t``."""
    return _CONTROLS.sub("", _SEQUENCES.sub("", str(text)))
