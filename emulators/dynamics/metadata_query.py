"""Query options on definition items: ``$select``, ``$filter`` and ``$expand`` as the metadata
endpoints document them (PAD ``webapi/query-metadata-web-api.md``).

* ``$select`` takes any property of the declared type (base type, or the cast's derived type);
  ``MetadataId`` is always returned, and a derived item keeps its ``@odata.type``.
* ``$filter`` works on primitive and enumeration properties; an enumeration literal carries its
  type (``AttributeType eq Microsoft.Dynamics.CRM.AttributeTypeCode'Picklist'``) and a managed
  property is filtered through its ``Value`` (``CanChangeTrackingBeEnabled/Value eq true``);
  Label properties can't be filtered. The same recursive-descent parser as data queries is used,
  over a table description built from the declared type's properties.
* No paging: every matching item comes in the first response.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from emulators.dynamics.errors import bad_request
from emulators.dynamics.expand_options import ExpandItem, check_expand_count, parse_expand
from emulators.dynamics.odata_filter import compile_filter
from emulators.dynamics.schema import AttrType, Column, Table

_ENUM_TYPE = re.compile(r"Microsoft\.Dynamics\.CRM\.\w+\s*$")
_MANAGED_VALUE = re.compile(r"\b([A-Za-z_]\w*)/Value\b")
_FLAT = "__"  # ``X/Value`` is filtered as the flat property ``X__Value``

Expander = Callable[[str, dict[str, str]], Any]
"""Produces the value of one navigation property of an item, given the nested options."""


@dataclass(frozen=True)
class DeclaredType:
    """The type a request addresses: its name, properties and navigation properties."""

    name: str
    properties: frozenset[str]
    navigation: Collection[str] = ()
    nested_options: Mapping[str, frozenset[str]] | None = None
    """Options each navigation property accepts inside ``$expand`` (default: ``$select``)."""


def normalize_filter(text: str) -> str:
    """Rewrite enumeration literals and ``X/Value`` paths into what the parser reads."""
    parts = re.split(r"('(?:[^']|'')*')", text)
    out: list[str] = []
    for index, part in enumerate(parts):
        if index % 2 == 1:
            out.append(part)
            continue
        part = _MANAGED_VALUE.sub(lambda m: f"{m.group(1)}{_FLAT}Value", part)
        if index + 1 < len(parts):
            part = _ENUM_TYPE.sub("", part)
        out.append(part)
    return "".join(out)


def _flatten(item: Mapping[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in item.items():
        if isinstance(value, dict):
            if "Value" in value and not isinstance(value["Value"], dict | list):
                flat[f"{key}{_FLAT}Value"] = value["Value"]
        elif not isinstance(value, list):
            flat[key] = value
    return flat


def _column_for(name: str, samples: list[Any]) -> Column:
    sample = next((s for s in samples if s is not None), None)
    if isinstance(sample, bool):
        return Column(name, AttrType.BOOLEAN)
    if isinstance(sample, int):
        return Column(name, AttrType.BIGINT)
    if isinstance(sample, float):
        return Column(name, AttrType.DOUBLE)
    return Column(name, AttrType.STRING, max_length=4000)


def _filter_table(
    declared: DeclaredType, items: list[dict[str, Any]], rows: list[dict[str, Any]]
) -> Table:
    names: set[str] = set()
    for row in rows:
        names.update(k for k in row if k.split(_FLAT)[0] in declared.properties)
    columns = {n: _column_for(n, [r.get(n) for r in rows]) for n in sorted(names)}
    complex_names = {k for i in items for k, v in i.items() if isinstance(v, dict | list)}
    for name in declared.properties - complex_names:  # filterable even when no item has one
        columns.setdefault(name, Column(name, AttrType.STRING, max_length=4000))
    return Table(declared.name, declared.name, "MetadataId", "MetadataId", columns)


def filter_items(
    items: list[dict[str, Any]], declared: DeclaredType, text: str
) -> list[dict[str, Any]]:
    """The items that match a metadata ``$filter`` (Label properties can't be filtered)."""
    rows = [_flatten(i) for i in items]
    predicate = compile_filter(normalize_filter(text), _filter_table(declared, items, rows))
    return [item for item, row in zip(items, rows, strict=True) if predicate(row)]


def parse_metadata_select(text: str | None, declared: DeclaredType) -> list[str] | None:
    """The names in ``$select`` (checked against the declared type), or None for all."""
    if text is None:
        return None
    names: list[str] = []
    for raw in text.split(","):
        name = raw.strip()
        if not name:
            continue
        if name not in declared.properties and name not in declared.navigation:
            raise bad_request(
                f"Could not find a property named '{name}' on type "
                f"'Microsoft.Dynamics.CRM.{declared.name}'."
            )
        if name not in names:
            names.append(name)
    return names


def parse_metadata_expand(text: str | None, declared: DeclaredType) -> list[ExpandItem]:
    """``$expand`` items, each a navigation property of the declared type with allowed options."""
    if text is None:
        return []
    items = parse_expand(text)
    check_expand_count(items)
    for item in items:
        if item.name not in declared.navigation:
            raise bad_request(
                f"Could not find a property named '{item.name}' on type "
                f"'Microsoft.Dynamics.CRM.{declared.name}'."
            )
        if item.ref:
            raise bad_request(
                "Expand with $ref is only supported on lookup type navigation property."
            )
        allowed = (declared.nested_options or {}).get(item.name, frozenset({"$select"}))
        for option in item.options:
            if option not in allowed:
                raise bad_request(
                    f"The query option '{option}' is not supported inside $expand of '{item.name}'."
                )
    return items


def shape(
    item: Mapping[str, Any],
    select: list[str] | None,
    expands: list[ExpandItem],
    expander: Expander | None,
) -> dict[str, Any]:
    """One item with the selected properties (MetadataId and ``@odata.type`` kept) and the
    expanded navigation properties."""
    if select is None:
        shaped = dict(item)
    else:
        keep = set(select) | {"MetadataId", "@odata.type"}
        shaped = {k: v for k, v in item.items() if k in keep}
    for expand in expands:
        if expander is None:
            raise bad_request(f"'{expand.name}' can't be expanded here.")
        shaped[expand.name] = expander(expand.name, expand.options)
    return shaped


def context_suffix(select: list[str] | None, expands: list[ExpandItem]) -> str:
    """``(a,b,Nav(c))`` for ``@odata.context``, or nothing when neither option was given."""
    parts = list(select or [])
    for expand in expands:
        nested = expand.options.get("$select")
        parts.append(f"{expand.name}({nested})" if nested else expand.name)
    return f"({','.join(parts)})" if parts else ""


def query_items(
    items: list[dict[str, Any]],
    declared: DeclaredType,
    options: Mapping[str, str],
    expander_for: Callable[[int], Expander] | None = None,
) -> tuple[list[dict[str, Any]], str]:
    """Filter, select and expand a collection; also returns the context suffix."""
    select = parse_metadata_select(options.get("$select"), declared)
    expands = parse_metadata_expand(options.get("$expand"), declared)
    indexed = list(enumerate(items))
    if "$filter" in options:
        kept = {id(i) for i in filter_items(items, declared, options["$filter"])}
        indexed = [(n, i) for n, i in indexed if id(i) in kept]
    shaped = [
        shape(item, select, expands, expander_for(n) if expander_for else None)
        for n, item in indexed
    ]
    return shaped, context_suffix(select, expands)
