"""``$expand`` on entity reads (PAD ``webapi/query/join-tables.md``).

* Single-valued navigation properties: the related row as an object (no ``@odata.etag``) with
  the nested ``$select`` columns and its primary key; a systemuser or team also carries
  ``ownerid`` (principal inheritance); ``null`` when the lookup is empty. Nested ``$expand`` is
  allowed. ``$top``/``$orderby`` are refused with the documented 0x80060888 message.
* ``<nav>/$ref``: ``{"@odata.id": ".../<set>(<id>)"}`` and the lookup value; collection-valued
  ``$ref`` is refused with the documented message.
* Collection-valued navigation properties: an array plus ``<nav>@odata.nextLink``, the filtered
  collection URL with the nested options. With a single-level ``$expand`` the array is not paged
  (up to 5,000 rows) and ``$filter``/``$orderby``/``$top`` apply; items carry ``@odata.etag`` and
  the lookup back to the parent. When a nested ``$expand`` appears anywhere in the query,
  ``Prefer: odata.maxpagesize`` pages every expanded collection (the nextLink then carries a
  ``$skiptoken``), items carry neither ETag nor back-reference, and ``$top``/``$orderby`` are
  refused. ``$skip``, ``$count``, ``$search`` and ``$levels`` are not supported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from emulators.dynamics.environment import Environment
from emulators.dynamics.errors import ODataError, bad_request, query_property_not_found
from emulators.dynamics.expand_options import ExpandItem, check_expand_count, parse_expand
from emulators.dynamics.navigation import PRINCIPALS, Navigation, navigation_properties
from emulators.dynamics.odata_filter import Predicate, compile_filter
from emulators.dynamics.paging import PagingCookie
from emulators.dynamics.protocol import ApiRequest
from emulators.dynamics.query_options import parse_orderby, parse_top, sort_key
from emulators.dynamics.schema import Column, Table
from emulators.dynamics.serialize import AnnotationFilter, RowRenderer
from emulators.dynamics.store import Record

EXPANDED_ROW_LIMIT = 5000
MANY_TO_ONE_OPTIONS = (
    "Only $select and $filter clause can be provided while doing $expand on many-to-one "
    "relationship or nested one-to-many relationship."
)
UNSUPPORTED_IN_EXPAND = ("$skip", "$count", "$search", "$levels")
_LINK_SAFE = ",()'*:@=;$"


def not_implemented(what: str) -> ODataError:
    """501 for a documented feature the emulator does not serve."""
    return ODataError(501, "0x8006088a", f"{what} is not implemented by the emulator.")


def has_nested_expand(items: list[ExpandItem]) -> bool:
    """True when any expand item carries an ``$expand`` of its own."""
    return any("$expand" in item.options for item in items)


@dataclass
class _Entry:
    item: ExpandItem
    nav: Navigation
    select_names: list[str] | None = None
    predicate: Predicate | None = None
    orders: list[tuple[Column, bool]] = field(default_factory=list)
    top: int | None = None
    children: dict[str, ExpandPlan] = field(default_factory=dict)


class ExpandPlan:
    """A validated ``$expand`` tree for one table; renders the expansions into rows."""

    def __init__(
        self,
        env: Environment,
        req: ApiRequest,
        table: Table,
        items: list[ExpandItem],
        annotations: AnnotationFilter,
        page_size: int | None,
        nested_mode: bool,
    ) -> None:
        self.env = env
        self.req = req
        self.table = table
        self.annotations = annotations
        self.page_size = page_size
        self.nested_mode = nested_mode
        navigation = navigation_properties(table, env.tables)
        self.entries = [self._entry(item, navigation) for item in items]

    @classmethod
    def parse(
        cls,
        env: Environment,
        req: ApiRequest,
        table: Table,
        text: str | None,
        annotations: AnnotationFilter,
        page_size: int | None,
    ) -> ExpandPlan | None:
        """The plan for a top-level ``$expand`` value, or None without one."""
        if text is None:
            return None
        items = parse_expand(text)
        check_expand_count(items)
        nested = has_nested_expand(items)
        return cls(env, req, table, items, annotations, page_size, nested)

    # -- validation -----------------------------------------------------------------------------

    def _entry(self, item: ExpandItem, navigation: dict[str, Navigation]) -> _Entry:
        nav = navigation.get(item.name)
        if nav is None:
            raise query_property_not_found(item.name, self.table.logical_name)
        for option in item.options:
            if option in UNSUPPORTED_IN_EXPAND:
                raise bad_request(f"The query option '{option}' is not supported inside $expand.")
            if option not in ("$select", "$filter", "$orderby", "$top", "$expand"):
                raise bad_request(f"The query parameter {option} is not supported")
        if item.ref:
            if nav.collection:
                raise bad_request(
                    "Expand with $ref is only supported on lookup type navigation property."
                )
            if item.options:
                raise bad_request("No query options can be applied to an $expand with $ref.")
            return _Entry(item, nav)
        limited = "$top" in item.options or "$orderby" in item.options
        if limited and (not nav.collection or self.nested_mode):
            raise bad_request(MANY_TO_ONE_OPTIONS)
        if not nav.collection and "$filter" in item.options:
            raise not_implemented("$filter inside $expand of a single-valued navigation property")
        related = [self.env.tables.get(name) for name in nav.related]
        tables = [t for t in related if t is not None]
        if len(tables) != len(related):
            raise not_implemented(f"Expanding '{item.name}' (its table is not served)")
        entry = _Entry(item, nav)
        entry.select_names = self._select_names(item, tables)
        target = tables[0]
        if "$filter" in item.options:
            entry.predicate = compile_filter(item.options["$filter"], target)
        if "$orderby" in item.options:
            entry.orders = parse_orderby(target, item.options["$orderby"])
        if "$top" in item.options:
            entry.top = parse_top(item.options["$top"])
        if "$expand" in item.options:
            if len(tables) > 1:
                raise not_implemented(f"A nested $expand under '{item.name}'")
            nested = parse_expand(item.options["$expand"])
            entry.children[target.logical_name] = ExpandPlan(
                self.env,
                self.req,
                target,
                nested,
                self.annotations,
                self.page_size,
                self.nested_mode,
            )
        return entry

    @staticmethod
    def _select_names(item: ExpandItem, tables: list[Table]) -> list[str] | None:
        text = item.options.get("$select")
        if text is None:
            return None
        names = [n.strip() for n in text.split(",") if n.strip()]
        for name in names:
            if all(t.column_for_property(name) is None for t in tables):
                raise query_property_not_found(name, tables[0].logical_name)
        return names

    # -- rendering ------------------------------------------------------------------------------

    def context_parts(self) -> list[str]:
        """The expand part of ``@odata.context``: ``nav(a,b,child(c))``."""
        parts: list[str] = []
        for entry in self.entries:
            name = entry.item.name
            if entry.item.ref:
                parts.extend([name, f"{name}/$ref()"])
                continue
            inner = list(entry.select_names or [])
            for child in entry.children.values():
                inner.extend(child.context_parts())
            parts.append(f"{name}({','.join(inner)})" if inner else name)
        return parts

    def apply(self, record: Record, row: dict[str, Any]) -> None:
        """Add every expansion of ``record`` to its rendered ``row``."""
        for entry in self.entries:
            if entry.nav.collection:
                self._collection(entry, record, row)
            else:
                self._single(entry, record, row)

    def _single(self, entry: _Entry, record: Record, row: dict[str, Any]) -> None:
        column = entry.nav.column
        value = record.values.get(column.value_name)
        target = record.targets.get(column.value_name, entry.nav.related[0])
        name = entry.item.name
        if entry.item.ref:
            row[column.value_name] = value
            data = self.env.db.data.get(target)
            row[name] = (
                {"@odata.id": f"{self.req.api_root}/{data.table.entity_set}({value})"}
                if value is not None and data is not None
                else None
            )
            return
        data = self.env.db.data.get(target)
        related = data.rows.get(value) if data is not None and isinstance(value, str) else None
        if data is None or related is None or target not in entry.nav.related:
            row[name] = None
            return
        rendered = self._render(entry, data.table, related, etag=False)
        if len(entry.nav.related) > 1:
            # ``ownerid`` is typed principal: minimal metadata names the derived type (OData
            # JSON format rule; UNVERIFIED for Dataverse).
            rendered = {"@odata.type": f"#Microsoft.Dynamics.CRM.{target}", **rendered}
        if target in PRINCIPALS:
            rendered["ownerid"] = related.values[data.table.primary_id]
        row[name] = rendered

    def _render(self, entry: _Entry, table: Table, record: Record, etag: bool) -> dict[str, Any]:
        select: list[Column] | None = None
        if entry.select_names is not None:
            select = [
                c for c in map(table.column_for_property, entry.select_names) if c is not None
            ]
            if entry.nav.collection and not self.nested_mode:
                back = entry.nav.column
                if back not in select:
                    select.append(back)  # the doc's items carry the lookup to the parent
        rendered = RowRenderer(self.env.db, table, select, self.annotations).render(record)
        if not etag:
            rendered.pop("@odata.etag", None)
        child = entry.children.get(table.logical_name)
        if child is not None:
            child.apply(record, rendered)
        return rendered

    def _collection(self, entry: _Entry, record: Record, row: dict[str, Any]) -> None:
        referencing = entry.nav.related[0]
        data = self.env.db.data[referencing]
        prop = entry.nav.column.value_name
        record_id = record.values[self.table.primary_id]
        ids = sorted(
            rid
            for table, rid, name in self.env.db.references.get(record_id, ())
            if table == referencing and name == prop
        )
        children = [data.rows[i] for i in ids if i in data.rows]
        if entry.predicate is not None:
            predicate = entry.predicate
            children = [c for c in children if predicate(c.values)]
        for column, descending in reversed(entry.orders):
            name = column.value_name
            children.sort(key=lambda r: sort_key(r.values.get(name)), reverse=descending)
        if entry.top is not None:
            children = children[: entry.top]
        limit = EXPANDED_ROW_LIMIT
        paged = self.nested_mode and self.page_size is not None
        if paged and self.page_size is not None:
            limit = self.page_size
        page, more = children[:limit], len(children) > limit
        nav = entry.item.name
        etag = not self.nested_mode
        row[nav] = [self._render(entry, data.table, child, etag) for child in page]
        params = [(k, v) for k, v in entry.item.options.items()]
        if paged and more:
            pk = data.table.primary_id
            cookie = PagingCookie(page=2)
            cookie.last[pk] = page[-1].values[pk]
            cookie.first[pk] = page[0].values[pk]
            params.append(("$skiptoken", cookie.encode()))
        elif paged:
            return  # everything fits: no next link
        query = "&".join(f"{k}={quote(v, safe=_LINK_SAFE)}" for k, v in params)
        link = f"{self.req.api_root}/{self.table.entity_set}({record_id})/{nav}"
        row[f"{nav}@odata.nextLink"] = f"{link}?{query}" if query else link


def _any_nested(items: list[ExpandItem]) -> bool:
    return has_nested_expand(items)
