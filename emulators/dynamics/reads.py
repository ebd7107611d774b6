"""GET on entity sets: queries with paging, single rows, ``$count``, and change tracking.

Query rules follow reference §0-§2: ``$select`` (PK always returned), ``$filter``, ``$orderby``
(default: primary key), ``$top`` (ignored with ``odata.maxpagesize``), ``$count``, pages of at most
5,000 rows with ``@odata.nextLink`` after ``value``; ``$skip``/``$search``/``$format`` rejected.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import quote

from emulators.dynamics.changetracking import Change, DeltaToken, changes_between, check_token
from emulators.dynamics.clock import format_datetime
from emulators.dynamics.environment import Environment
from emulators.dynamics.errors import bad_request, not_found, track_changes_option
from emulators.dynamics.expand import ExpandPlan
from emulators.dynamics.odata_filter import compile_filter
from emulators.dynamics.paging import PagingCookie
from emulators.dynamics.protocol import ApiRequest, ApiResponse, Preferences
from emulators.dynamics.query_options import (
    COLLECTION_OPTIONS,
    check_options,
    column_sort_key,
    compare_keys,
    parse_orderby,
    parse_select,
    parse_top,
    resolve_key,
)
from emulators.dynamics.schema import Column, Table
from emulators.dynamics.serialize import (
    TOTAL_COUNT,
    TOTAL_COUNT_EXCEEDED,
    AnnotationFilter,
    RowRenderer,
    etag,
)
from emulators.dynamics.store import Record, TableData

COUNT_LIMIT = 5000  # $count and /$count stop at 5,000 (PAD query-data-web-api.md)


def context_url(
    req: ApiRequest,
    table: Table,
    select: list[Column] | None,
    suffix: str = "",
    expand: ExpandPlan | None = None,
) -> str:
    """``@odata.context`` for a collection, an entity or a delta (with any expansions)."""
    parts = [c.value_name for c in select or []]
    if expand is not None:
        parts.extend(expand.context_parts())
    names = f"({','.join(parts)})" if parts else ""
    return f"{req.api_root}/$metadata#{table.entity_set}{names}{suffix}"


_LINK_SAFE = ",()'*:@"


def _link(req: ApiRequest, path: str, params: list[tuple[str, str]]) -> str:
    query = "&".join(f"{k}={quote(v, safe=_LINK_SAFE)}" for k, v in params)
    return f"{req.api_root}/{path}?{query}"


class QueryReader:
    """Answers GET requests on one entity set."""

    def __init__(
        self,
        env: Environment,
        req: ApiRequest,
        data: TableData,
        scope: tuple[str, str, str] | None = None,
    ) -> None:
        """``scope`` = (path, lookup property, id) serves a filtered collection such as
        ``accounts(<id>)/contact_customer_accounts``: the rows whose lookup holds the id."""
        self.env = env
        self.req = req
        self.data = data
        self.table = data.table
        self.path = scope[0] if scope else self.table.entity_set
        self.scope = scope

    def _predicate(self, options: dict[str, str]) -> Callable[[dict[str, Any]], bool] | None:
        predicate = compile_filter(options["$filter"], self.table) if "$filter" in options else None
        if self.scope is None:
            return predicate
        _, prop, record_id = self.scope
        if predicate is None:
            return lambda row: row.get(prop) == record_id
        inner = predicate
        return lambda row: row.get(prop) == record_id and inner(row)

    def _expand(self, options: dict[str, str], prefs: Preferences) -> ExpandPlan | None:
        annotations = AnnotationFilter(prefs.include_annotations)
        size = self._page_size(prefs) if prefs.max_page_size else None
        return ExpandPlan.parse(
            self.env, self.req, self.table, options.get("$expand"), annotations, size
        )

    def _page_size(self, prefs: Preferences) -> int:
        limit = self.env.config.max_page_size
        return min(prefs.max_page_size or limit, limit)

    def _applied(self, prefs: Preferences, annotations: AnnotationFilter) -> dict[str, str]:
        applied = []
        if prefs.track_changes:
            applied.append("odata.track-changes")
        if prefs.max_page_size:
            applied.append(f"odata.maxpagesize={self._page_size(prefs)}")
        if annotations.spec:
            applied.append(f'odata.include-annotations="{annotations.spec}"')
        return {"Preference-Applied": ",".join(applied)} if applied else {}

    # -- collections ----------------------------------------------------------------------------

    def collection(self, options: dict[str, str], prefs: Preferences) -> ApiResponse:
        """``GET /<set>`` with query options."""
        if prefs.track_changes or "$deltatoken" in options:
            return self._tracked(options, prefs)
        check_options(options, COLLECTION_OPTIONS)
        select = parse_select(self.table, options.get("$select"))
        predicate = self._predicate(options)
        orders = parse_orderby(self.table, options.get("$orderby"))
        plan = self._expand(options, prefs)
        annotations = AnnotationFilter(prefs.include_annotations)
        renderer = RowRenderer(self.env.db, self.table, select, annotations)
        size = self._page_size(prefs)
        top = parse_top(options.get("$top"))
        if top is not None and prefs.max_page_size is None:
            size = min(top, size)
        cookie = PagingCookie.decode(options["$skiptoken"]) if "$skiptoken" in options else None
        if orders:
            rows, more = self._ordered_page(predicate, orders, cookie, size)
        else:
            rows, more = self._pk_page(predicate, cookie, size)
        if top is not None and prefs.max_page_size is None:
            more = False  # $top: one page, no nextLink
        body: dict[str, Any] = {
            "@odata.context": context_url(self.req, self.table, select, expand=plan)
        }
        if options.get("$count", "").lower() == "true":
            total = self._count(predicate)
            body["@odata.count"] = min(total, COUNT_LIMIT)
            if annotations.total_count:
                body[f"@{TOTAL_COUNT}"] = total if total <= COUNT_LIMIT else -1
                body[f"@{TOTAL_COUNT_EXCEEDED}"] = total > COUNT_LIMIT
        body["value"] = [renderer.render(r) for r in rows]
        if plan is not None:
            for record, row in zip(rows, body["value"], strict=True):
                plan.apply(record, row)
        if more and rows:
            next_cookie = PagingCookie(page=(cookie.page if cookie else 1) + 1)
            last, first = rows[-1].values, rows[0].values
            for column, _ in orders:
                next_cookie.last[column.value_name] = last.get(column.value_name)
                next_cookie.first[column.value_name] = first.get(column.value_name)
            next_cookie.last[self.table.primary_id] = last[self.table.primary_id]
            next_cookie.first[self.table.primary_id] = first[self.table.primary_id]
            params = [(k, v) for k, v in options.items() if k != "$skiptoken"]
            params.append(("$skiptoken", next_cookie.encode()))
            body["@odata.nextLink"] = _link(self.req, self.path, params)
        return ApiResponse.json(200, body, self._applied(prefs, annotations))

    def _count(self, predicate: Callable[[dict[str, Any]], bool] | None) -> int:
        rows = self.data.rows
        if predicate is None:
            return len(rows)
        return sum(1 for r in rows.values() if predicate(r.values))

    def _pk_page(
        self,
        predicate: Callable[[dict[str, Any]], bool] | None,
        cookie: PagingCookie | None,
        size: int,
    ) -> tuple[list[Record], bool]:
        order, rows = self.data.order, self.data.rows
        start = 0
        if cookie is not None:
            last_id = cookie.last.get(self.table.primary_id)
            if not isinstance(last_id, str):
                raise bad_request("The $skiptoken paging cookie does not fit this query.")
            start = bisect.bisect_right(order, last_id)
        if predicate is None:
            ids = order[start : start + size + 1]
            page = [rows[i] for i in ids]
        else:
            page = []
            for index in range(start, len(order)):
                record = rows[order[index]]
                if predicate(record.values):
                    page.append(record)
                    if len(page) > size:
                        break
        return page[:size], len(page) > size

    def _ordered_page(
        self,
        predicate: Callable[[dict[str, Any]], bool] | None,
        orders: list[tuple[Column, bool]],
        cookie: PagingCookie | None,
        size: int,
    ) -> tuple[list[Record], bool]:
        pk = self.table.primary_id
        records = [
            r for r in (self.data.rows[i] for i in self.data.order)
            if predicate is None or predicate(r.values)
        ]  # fmt: skip
        for column, desc in reversed(orders):
            records.sort(key=column_sort_key(column.value_name), reverse=desc)
        start = 0
        if cookie is not None:
            names = [c.value_name for c, _ in orders]
            if any(n not in cookie.last for n in names) or pk not in cookie.last:
                raise bad_request("The $skiptoken paging cookie does not fit this query.")
            last = [cookie.last[n] for n in names] + [cookie.last[pk]]
            directions = [d for _, d in orders] + [False]
            start = len(records)
            for index, record in enumerate(records):
                values = [record.values.get(n) for n in names] + [record.values[pk]]
                if compare_keys(values, last, directions) > 0:
                    start = index
                    break
        page = records[start : start + size + 1]
        return page[:size], len(page) > size

    # -- single rows and counts -----------------------------------------------------------------

    def single(self, key: str, options: dict[str, str], prefs: Preferences) -> ApiResponse:
        """``GET /<set>(<key>)``; ``If-None-Match: W/"v"`` gives 304 when unchanged."""
        check_options(options, {"$select", "$expand"})
        record_id = resolve_key(self.data, key)
        record = self.data.rows.get(record_id) if record_id else None
        if record is None:
            raise not_found(self.table.logical_name, record_id or key)
        select = parse_select(self.table, options.get("$select"))
        annotations = AnnotationFilter(prefs.include_annotations)
        plan = self._expand(options, prefs)
        if_none_match = self.req.header("if-none-match")
        unchanged = if_none_match and if_none_match == etag(record.version)
        if unchanged and not annotations.any and plan is None:  # never with $expand (§3)
            return ApiResponse.empty(304, {"ETag": etag(record.version)})
        row = RowRenderer(self.env.db, self.table, select, annotations).render(record)
        if plan is not None:
            plan.apply(record, row)
        context = context_url(self.req, self.table, select, "/$entity", plan)
        body = {"@odata.context": context, **row}
        headers = {"ETag": etag(record.version), **self._applied(prefs, annotations)}
        return ApiResponse.json(200, body, headers)

    def count(self) -> ApiResponse:
        """``GET /<set>/$count``: a plain number, at most 5,000."""
        total = min(len(self.data.rows), COUNT_LIMIT)
        return ApiResponse(
            200, {"Content-Type": "text/plain", "OData-Version": "4.0"}, str(total).encode()
        )

    # -- change tracking ------------------------------------------------------------------------

    def _tracked(self, options: dict[str, str], prefs: Preferences) -> ApiResponse:
        if not self.table.change_tracking:
            # UNVERIFIED (reference §1: no source gives this error); our documented choice.
            raise bad_request(
                f"Change tracking is not enabled for the entity '{self.table.logical_name}'. "
                "Enable 'Track changes' (ChangeTrackingEnabled) on the table to use "
                "odata.track-changes."
            )
        for option in ("filter", "orderby", "expand", "top"):
            if f"${option}" in options:
                raise track_changes_option(option)
        check_options(options, COLLECTION_OPTIONS)
        prefs.track_changes = True
        select = parse_select(self.table, options.get("$select"))
        annotations = AnnotationFilter(prefs.include_annotations)
        renderer = RowRenderer(self.env.db, self.table, select, annotations)
        size = self._page_size(prefs)
        cookie = PagingCookie.decode(options["$skiptoken"]) if "$skiptoken" in options else None
        now = self.env.clock.now()
        if "$deltatoken" in options:
            token = DeltaToken.decode(options["$deltatoken"])
            check_token(token, self.env.db, now, self.env.expire_change_tracking_days)
            values, next_cookie, snapshot = self._delta_page(token, cookie, size, renderer)
            suffix = "/$delta"
        else:
            values, next_cookie, snapshot = self._initial_page(cookie, size, renderer, now)
            suffix = ""
        body: dict[str, Any] = {
            "@odata.context": context_url(self.req, self.table, select, suffix),
            "value": values,
        }
        base: list[tuple[str, str]] = []
        if "$select" in options:
            base.append(("$select", options["$select"]))
        if next_cookie is not None:
            params = base.copy()
            if "$deltatoken" in options:
                params.append(("$deltatoken", options["$deltatoken"]))
            params.append(("$skiptoken", next_cookie.encode()))
            body["@odata.nextLink"] = _link(self.req, self.path, params)
        else:
            # reference §1: the deltaLink only on the last page, never with a nextLink
            link = _link(self.req, self.path, base)
            separator = "&" if base else ""
            body["@odata.deltaLink"] = (
                f"{link}{separator}$deltatoken={quote(snapshot.encode(), safe='')}"
            )
        return ApiResponse.json(200, body, self._applied(prefs, annotations))

    def _initial_page(
        self, cookie: PagingCookie | None, size: int, renderer: RowRenderer, now: datetime
    ) -> tuple[list[dict[str, Any]], PagingCookie | None, DeltaToken]:
        if cookie is None:
            snapshot = DeltaToken(self.env.db.current_version, now)
        else:
            snapshot = _snapshot_from(cookie)
        records, more = self._pk_page(None, cookie, size)
        next_cookie = None
        if not (more and records) and self.env.delta_link_moment == "last_page":
            snapshot = DeltaToken(self.env.db.current_version, now)  # the unfavourable reading
        if more and records:
            next_cookie = PagingCookie(
                page=(cookie.page if cookie else 1) + 1,
                tracking=True,
                attrs=_snapshot_attrs(snapshot),
                last={self.table.primary_id: records[-1].values[self.table.primary_id]},
                first={self.table.primary_id: records[0].values[self.table.primary_id]},
            )
        return [renderer.render(r) for r in records], next_cookie, snapshot

    def _delta_page(
        self,
        token: DeltaToken,
        cookie: PagingCookie | None,
        size: int,
        renderer: RowRenderer,
    ) -> tuple[list[dict[str, Any]], PagingCookie | None, DeltaToken]:
        if cookie is None:
            snapshot = DeltaToken(self.env.db.current_version, self.env.clock.now())
            after = token.version
        else:
            snapshot = _snapshot_from(cookie)
            last = cookie.last.get("version")
            if not isinstance(last, int):
                raise bad_request("The $skiptoken paging cookie does not fit this query.")
            after = last
        upserts, deletes = changes_between(self.data, token.version, snapshot.version)
        # Resume by version, which never changes for a log entry: keyset paging cannot skip rows
        # even when rows change between pages (a row changed after the snapshot is in the next
        # delta instead).
        phase = cookie.attrs.get("phase", "u") if cookie else "u"
        entries: list[tuple[str, Change]] = []
        if phase == "u":
            entries.extend(("u", c) for c in upserts if c.version > after)
            entries.extend(("d", c) for c in deletes)
        else:
            entries.extend(("d", c) for c in deletes if c.version > after)
        page = entries[: size + 1]
        values: list[dict[str, Any]] = []
        for kind, change in page[:size]:
            if kind == "u":
                values.append(renderer.render(self.data.rows[change.record_id]))
            else:
                values.append(
                    {
                        "@odata.context": (
                            f"{self.req.api_root}/$metadata#{self.table.entity_set}/$deletedEntity"
                        ),
                        "id": change.record_id,
                        "reason": "deleted",
                    }
                )
        next_cookie = None
        if len(page) > size:
            kind, change = page[size - 1]
            attrs = _snapshot_attrs(snapshot)
            attrs["phase"] = kind
            next_cookie = PagingCookie(
                page=(cookie.page if cookie else 1) + 1,
                tracking=True,
                attrs=attrs,
                last={"version": change.version},
                first={"version": page[0][1].version},
            )
        return values, next_cookie, snapshot


def _snapshot_attrs(snapshot: DeltaToken) -> dict[str, str]:
    return {"version": str(snapshot.version), "issued": format_datetime(snapshot.issued)}


def _snapshot_from(cookie: PagingCookie) -> DeltaToken:
    try:
        version = int(cookie.attrs["version"])
        issued = datetime.fromisoformat(cookie.attrs["issued"].replace("Z", "+00:00"))
    except (KeyError, ValueError):
        raise bad_request("The $skiptoken paging cookie does not fit this query.") from None
    return DeltaToken(version, issued)
