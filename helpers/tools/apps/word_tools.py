"""Runs in: spoke, vanillagpt (app code: in its own spoke, or in VanillaGPT's one process).

word_tools: an existing LangChain tool, wrapped as a SecGPT app.
"""

from langchain_core.tools import tool

from helpers.tools.wrappers import langchain_functionalities


@tool
def count_words(text: str) -> int:
    """Count the words in a text."""
    return len(text.split())


FUNCTIONALITIES = langchain_functionalities(count_words)
