"""Runs in: hub.

SecGPT chat: `python secgpt_main.py` (see --help). Apps run isolated in sandboxed spokes.
"""

from __future__ import annotations

import sys

from helpers.utilities.chat_cli import main_for
from helpers.utilities.session import Session


def _build(args, llm, chat) -> Session:
    from helpers.configs.isolation import isolation_mode
    from hub.hub import Hub
    return Hub(llm, user_id=args.user, consent=chat.consent, functionalities=args.functionalities,
               read=chat.read, write=chat.write, emit=chat.emit, isolation=isolation_mode(args.isolation))


def main(user_id: str = "0", debug: bool = False, argv: list[str] | None = None) -> int:
    """Run the chat, as the original's ``main(user_id, debug=...)``."""
    return main_for("SecGPT", _build, __doc__.split("\n\n", 1)[1], user_id, debug, argv, isolation=True)


if __name__ == "__main__":
    sys.exit(main())
