"""Runs in: vanillagpt.

VanillaGPT chat: `python vanillagpt_main.py` (see --help). The baseline: all apps in one context.
"""

from __future__ import annotations

import sys

from helpers.utilities.chat_cli import main_for
from helpers.utilities.session import Session


def _build(args, llm, chat) -> Session:
    from vanillagpt.vanillagpt import VanillaGPT
    return VanillaGPT(llm, user_id=args.user, functionalities=args.functionalities, emit=chat.emit)


def main(user_id: str = "0", debug: bool = False, argv: list[str] | None = None) -> int:
    """Run the chat, as the original's ``main(user_id, debug=...)``."""
    return main_for("VanillaGPT", _build, __doc__.split("\n\n", 1)[1], user_id, debug, argv)


if __name__ == "__main__":
    sys.exit(main())
