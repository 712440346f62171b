"""Runs in: spoke, vanillagpt (app code: in its own spoke, or in VanillaGPT's one process).

Wrap existing tools as SecGPT apps: a LangChain tool or a LlamaIndex FunctionTool becomes
a functionality that runs in the app's own spoke.

In the app module:

    FUNCTIONALITIES = langchain_functionalities(my_langchain_tool)
    FUNCTIONALITIES = llamaindex_functionalities(my_function_tool)

and write its specification once with

    python -m helpers.tools.wrappers MODULE TOOL_ATTRIBUTE > helpers/tools/specifications/NAME.json

(this imports the module in your shell, never in the hub).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Callable
from typing import Any


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def langchain_functionalities(*tools) -> dict[str, Callable]:
    """``{tool.name: fn(request, hub)}`` for LangChain tools (``BaseTool``, ``@tool`` functions)."""
    return {t.name: (lambda request, hub, t=t: _text(t.invoke(request))) for t in tools}


def llamaindex_functionalities(*tools) -> dict[str, Callable]:
    """``{tool.metadata.name: fn(request, hub)}`` for LlamaIndex tools (``FunctionTool``)."""
    return {t.metadata.name: (lambda request, hub, t=t: _text(t.call(**request).raw_output)) for t in tools}


def request_schema(tool) -> dict:
    """The JSON Schema of a LangChain or LlamaIndex tool's arguments."""
    if hasattr(tool, "metadata") and hasattr(tool.metadata, "get_parameters_dict"):
        return tool.metadata.get_parameters_dict()
    from langchain_core.utils.function_calling import convert_to_openai_tool
    return convert_to_openai_tool(tool)["function"]["parameters"]


def tool_name(tool) -> str:
    return tool.metadata.name if hasattr(tool, "metadata") and hasattr(tool.metadata, "name") else tool.name


def specification(tool) -> dict:
    name = tool_name(tool)
    return {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
            "properties": {name: {"type": "object", "properties": {
                "request": request_schema(tool),
                "response": {"type": "string", "description": f"What {name} returns."}},
                "required": ["request", "response"]}},
            "required": [name]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.tools.wrappers",
                                     description="Print the specification of a LangChain/LlamaIndex tool.")
    parser.add_argument("module")
    parser.add_argument("attribute")
    args = parser.parse_args(argv)
    tool = getattr(importlib.import_module(args.module), args.attribute)
    json.dump(specification(tool), sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
