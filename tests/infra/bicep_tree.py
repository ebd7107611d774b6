"""Small readers over pycep-parser trees (the JSON infra/tools/bicep_facts.py prints).

pycep renders a reference to a parameter or variable as its bare name and a string literal as
its text, so callers resolve names against the file's declarations themselves.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_FULL_LINE_COMMENT = re.compile(r"^\s*//.*$", re.MULTILINE)
_BLOCK_COMMENT = re.compile(r"/\*.*?\*/", re.DOTALL)


def code_text(path: Path) -> str:
    """A Bicep file without its comments (comments may name things the code must not use)."""
    text = _BLOCK_COMMENT.sub("", path.read_text(encoding="utf-8"))
    return _FULL_LINE_COMMENT.sub("", text)


def body(resource_or_module: dict[str, Any]) -> dict[str, Any]:
    """The declaration body, unwrapped from pycep's loop/condition wrappers."""
    config: dict[str, Any] = resource_or_module["config"]
    while "config" in config and ("condition" in config or "loop_type" in config):
        config = config["config"]
    return config


def loop_of(resource: dict[str, Any]) -> tuple[str, str] | None:
    """``(item name, array name)`` of a ``for item in array`` declaration, else None."""
    loop = resource["config"].get("loop_type")
    if not loop:
        return None
    detail = loop["detail"]
    return detail["item_name"], detail["array_name"]


def condition_of(resource: dict[str, Any]) -> Any:
    """The ``if (...)`` condition of a declaration, else None."""
    config = resource["config"]
    if "condition" in config:
        return config["condition"]
    inner = config.get("config")
    if isinstance(inner, dict) and "condition" in inner:
        return inner["condition"]
    return None


def object_literals(node: Any) -> Iterator[dict[str, Any]]:
    """The object literals a value can evaluate to, through ``union()`` and ``?:``."""
    if not isinstance(node, dict):
        return
    if "function" in node and node["function"]["type"] == "union":
        for argument in node["function"]["parameters"].values():
            yield from object_literals(argument)
    elif "operator" in node and node["operator"]["type"] == "conditional":
        operands = node["operator"]["operands"]
        yield from object_literals(operands["true_value"])
        yield from object_literals(operands["false_value"])
    elif "function" not in node and "operator" not in node:
        yield node


def object_entries(node: Any) -> dict[str, Any]:
    """Every key (quotes stripped) any branch of ``node`` may set, with its value."""
    entries: dict[str, Any] = {}
    for literal in object_literals(node):
        for key, value in literal.items():
            entries[key.strip("'")] = value
    return entries


def referenced_name(value: Any) -> str | None:
    """The single identifier a value is, or converts with ``string()``, else None."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "function" in value:
        function = value["function"]
        if function["type"] == "string":
            argument = function["parameters"]["value_to_convert"]
            return argument if isinstance(argument, str) else None
    return None


def decorators(declaration: dict[str, Any]) -> dict[str, Any]:
    """A parameter's decorators by type (``min_value``, ``max_value``, ``allowed``, ...)."""
    return {d["type"]: d.get("argument") for d in declaration.get("decorators", [])}


def walk(node: Any) -> Iterator[Any]:
    """Every node of a tree, depth first."""
    yield node
    if isinstance(node, dict):
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def functions(tree: Any, function_type: str) -> Iterator[dict[str, Any]]:
    """Parameters of every call of a function (pycep's snake_case type, e.g. load_text_content)."""
    for node in walk(tree):
        call = node.get("function") if isinstance(node, dict) else None
        if isinstance(call, dict) and call.get("type") == function_type:
            yield call.get("parameters") or {}
