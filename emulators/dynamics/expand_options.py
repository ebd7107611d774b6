"""Parsing ``$expand`` values: ``a($select=x;$filter=y),b($expand=c($select=z)),d/$ref``.

Options inside the parentheses are separated by ``;`` (PAD ``webapi/query/join-tables.md``);
commas and semicolons inside quoted strings or nested parentheses do not split. A query may hold
at most 15 ``$expand`` options (same doc).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from emulators.dynamics.errors import bad_request

MAX_EXPANDS = 15


@dataclass(frozen=True)
class ExpandItem:
    """One navigation property to expand and the query options applied to it."""

    name: str
    options: dict[str, str] = field(default_factory=dict)
    ref: bool = False
    """``<name>/$ref``: references (``@odata.id``) instead of the related rows."""


def split_top_level(text: str, separator: str) -> list[str]:
    """Split at ``separator`` outside quotes and parentheses."""
    parts: list[str] = []
    depth, quoted, start = 0, False, 0
    for index, char in enumerate(text):
        if char == "'":
            quoted = not quoted
        elif quoted:
            continue
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise bad_request(f"Unbalanced parentheses in '{text}'.")
        elif char == separator and depth == 0:
            parts.append(text[start:index])
            start = index + 1
    if depth != 0 or quoted:
        raise bad_request(f"Unbalanced parentheses or quotes in '{text}'.")
    parts.append(text[start:])
    return parts


def parse_expand(text: str) -> list[ExpandItem]:
    """The items of one ``$expand`` value; a 400 for malformed text."""
    items: list[ExpandItem] = []
    for raw in split_top_level(text, ","):
        part = raw.strip()
        if not part:
            raise bad_request(f"The $expand expression '{text}' is not valid.")
        name, options = part, ""
        if "(" in part:
            if not part.endswith(")"):
                raise bad_request(f"The $expand expression '{text}' is not valid.")
            name, options = part[: part.index("(")], part[part.index("(") + 1 : -1]
        name = name.strip()
        ref = name.endswith("/$ref")
        if ref:
            name = name[: -len("/$ref")]
        if not name or not all(c.isalnum() or c in "_." for c in name):
            raise bad_request(f"The $expand expression '{text}' is not valid.")
        items.append(ExpandItem(name, parse_nested_options(options, text), ref))
    names = [i.name for i in items]
    if len(set(names)) != len(names):
        raise bad_request(f"A navigation property is expanded more than once in '{text}'.")
    return items


def parse_nested_options(text: str, whole: str) -> dict[str, str]:
    """``$select=a,b;$filter=...`` inside one expand item."""
    options: dict[str, str] = {}
    if not text.strip():
        return options
    for raw in split_top_level(text, ";"):
        part = raw.strip()
        if not part:
            continue
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or not name.startswith("$"):
            raise bad_request(f"The $expand expression '{whole}' is not valid.")
        if name in options:
            raise bad_request(f"Query option '{name}' was specified more than once.")
        options[name] = value.strip()
    return options


def count_expands(items: list[ExpandItem]) -> int:
    """How many ``$expand`` options a parsed tree holds (nested ones included)."""
    total = 0
    for item in items:
        total += 1
        nested = item.options.get("$expand")
        if nested:
            total += count_expands(parse_expand(nested))
    return total


def check_expand_count(items: list[ExpandItem]) -> None:
    """At most 15 ``$expand`` options per query (join-tables doc; UNVERIFIED error wording)."""
    if count_expands(items) > MAX_EXPANDS:
        raise bad_request(
            f"The query has more than {MAX_EXPANDS} $expand options; at most {MAX_EXPANDS} "
            "are allowed."
        )
