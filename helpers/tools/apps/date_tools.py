"""Runs in: spoke, vanillagpt (app code: in its own spoke, or in VanillaGPT's one process).

date_tools: an existing LlamaIndex FunctionTool, wrapped as a SecGPT app.
"""

from datetime import date

from llama_index.core.tools import FunctionTool

from helpers.tools.wrappers import llamaindex_functionalities


def days_between(start: str, end: str) -> int:
    """Number of days from start to end (dates as YYYY-MM-DD)."""
    return (date.fromisoformat(end) - date.fromisoformat(start)).days


days_between_tool = FunctionTool.from_defaults(fn=days_between)
FUNCTIONALITIES = llamaindex_functionalities(days_between_tool)
