"""Reading rows: full loads and change-tracking deltas, one page per call, plus counts.

The protocol (reference §1, §2):

* A full read is ``GET <set>?$select=...`` with ``Prefer: odata.track-changes,
  odata.maxpagesize=N``. Its pages carry ``@odata.nextLink`` until the last, which carries
  ``@odata.deltaLink`` instead: the cursor for the next delta read.
* A delta read GETs a stored delta link exactly as given (never rebuilt) with the same
  preferences. New and updated rows look alike; deleted rows are
  ``{"@odata.context": ".../$deletedEntity", "id": ..., "reason": "deleted"}``.
* Every page is requested with the same ``odata.maxpagesize``; links are followed as given.
* Track-changes reads ask for no annotations (the deltaLink went missing when they were
  requested, powerapps-docs#439) and use no ``$filter``/``$orderby``/``$top``.
* An expired delta token answers ``0x80044352``: :class:`~shared.errors.DeltaTokenExpiredError`,
  and the caller starts a full read again.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import Any

import httpx

from shared.dynamics.models import (
    FORMATTED_VALUE,
    LOOKUP_LOGICAL_NAME,
    ChangedRecord,
    ChangePage,
    RecordCount,
    TableRef,
)
from shared.dynamics.odata import Filter, identifier, is_guid, one_of
from shared.dynamics.transport import DataverseTransport, decode_json
from shared.errors import ApiRequestError, ConfigurationError

MAX_PAGE_SIZE = 5000
"""Dataverse returns at most 5,000 rows a page and accepts no larger maxpagesize (§2)."""
IDS_PER_READ = 100
"""GUIDs per ``$filter`` when reading rows by id: about 5 KB of URL, far below the 32 KB cap."""
COUNT_ANNOTATIONS = (
    "Microsoft.Dynamics.CRM.totalrecordcount,Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded"
)


def _select(table: TableRef, columns: Sequence[str]) -> str:
    """``$select``: the checked column names, the primary key included once."""
    names = [identifier(c) for c in columns]
    if table.id_attribute not in names:
        names.append(table.id_attribute)
    return ",".join(dict.fromkeys(names))


def _prefer(
    *, track_changes: bool, page_size: int, include_lookup_names: bool, formatted_values: bool
) -> str:
    parts = []
    if track_changes:
        parts.append("odata.track-changes")
    parts.append(f"odata.maxpagesize={page_size}")
    annotations = []
    if include_lookup_names:
        annotations.append(LOOKUP_LOGICAL_NAME)
    if formatted_values:
        annotations.append(FORMATTED_VALUE)
    if annotations:
        parts.append(f'odata.include-annotations="{",".join(annotations)}"')
    return ",".join(parts)


def _is_deleted(item: Mapping[str, Any]) -> bool:
    context = item.get("@odata.context")
    if isinstance(context, str) and context.endswith("/$deletedEntity"):
        return True
    return item.get("reason") == "deleted" and "id" in item and len(item) <= 3


def parse_page(
    table: TableRef, body: Mapping[str, Any], *, delta_link_given: str | None = None
) -> ChangePage:
    """A page from a response body (pure; see the module docstring for the shapes).

    Args:
        table: the table read (its primary key names each row's id).
        body: the decoded JSON body; ``{}`` stands for an empty response.
        delta_link_given: the delta link this page was read from, if it was the first page of
            a delta read. The docs say "an empty JSON response" when nothing changed
            (reference §1), so such a response keeps this link as the cursor.

    Raises:
        ApiRequestError: a row has no primary key, or the body is not a page.
    """
    values = body.get("value")
    next_link = body.get("@odata.nextLink")
    delta_link = body.get("@odata.deltaLink")
    if delta_link_given is not None and not values and not next_link and not delta_link:
        # Nothing changed and no new cursor: the given one is still the right place to resume.
        return ChangePage((), (), None, delta_link_given)
    if not isinstance(values, list):
        raise ApiRequestError(
            f"Dataverse read of {table.entity_set} returned no 'value' list", system="dynamics"
        )
    records: list[ChangedRecord] = []
    deleted: list[str] = []
    for item in values:
        if not isinstance(item, dict):
            raise ApiRequestError(
                f"Dataverse read of {table.entity_set} returned a row that is not an object",
                system="dynamics",
            )
        if _is_deleted(item):
            deleted.append(str(item["id"]))
            continue
        record_id = item.get(table.id_attribute)
        if not isinstance(record_id, str):
            raise ApiRequestError(
                f"Dataverse read of {table.entity_set} returned a row without {table.id_attribute}",
                system="dynamics",
            )
        etag = item.get("@odata.etag")
        records.append(ChangedRecord(record_id, etag if isinstance(etag, str) else None, item))
    if isinstance(next_link, str) and next_link:
        # OData: a page has a nextLink or a deltaLink, never both (oasis-tcs/odata-specs#639).
        return ChangePage(tuple(records), tuple(deleted), next_link, None)
    return ChangePage(
        tuple(records),
        tuple(deleted),
        None,
        delta_link if isinstance(delta_link, str) and delta_link else None,
    )


def _decode(response: httpx.Response, table: TableRef) -> dict[str, Any]:
    body = decode_json(response, f"read of {table.entity_set}")
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise ApiRequestError(
            f"Dataverse read of {table.entity_set} returned JSON that is not an object",
            system="dynamics",
            status=response.status_code,
        )
    return body


async def read_page(
    transport: DataverseTransport,
    table: TableRef,
    columns: Sequence[str],
    *,
    next_link: str | None = None,
    delta_link: str | None = None,
    track_changes: bool = True,
    page_size: int = MAX_PAGE_SIZE,
    where: Filter | None = None,
    include_lookup_names: bool = False,
    formatted_values: bool = False,
) -> ChangePage:
    """Read one page: the first of a full read, the page at ``next_link``, or a delta.

    Args:
        transport: the request loop.
        table: the table to read.
        columns: the columns to select (the primary key is added). Used for the first page of
            a full read only; links carry their own ``$select``.
        next_link: continue a read at this ``@odata.nextLink``.
        delta_link: read the changes since this ``@odata.deltaLink``.
        track_changes: ask for change tracking (a delta link at the end). Off for plain reads.
        page_size: rows per page, 1 to 5,000; send the same value for every page of a read.
        where: a ``$filter`` (plain reads only: change tracking does not support it).
        include_lookup_names: annotate lookups with the table they point at, e.g. whether
            ``_ownerid_value`` is a ``systemuser`` or a ``team`` (plain reads only).
        formatted_values: annotate columns with display text (plain reads only).

    Raises:
        DeltaTokenExpiredError: the delta link is older than change tracking keeps.
        ConfigurationError: the options contradict each other or a link is not ours.
        DmsyncError: any other failure, mapped by the transport.
    """
    if next_link and delta_link:
        raise ValueError("give next_link or delta_link, not both")
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValueError(f"page_size must be within 1..{MAX_PAGE_SIZE}")
    if track_changes and (where is not None or include_lookup_names or formatted_values):
        raise ConfigurationError(
            f"Reading {table.entity_set} with change tracking cannot use $filter or annotations "
            "(Dataverse drops the deltaLink or rejects the query); read those separately "
            "with track_changes=False"
        )
    prefer = _prefer(
        track_changes=track_changes,
        page_size=page_size,
        include_lookup_names=include_lookup_names,
        formatted_values=formatted_values,
    )
    link = next_link or delta_link
    if link:
        url = transport.checked_link(link)
    else:
        query = {"$select": _select(table, columns)}
        if where is not None:
            query["$filter"] = where.text
        url = transport.url(table.entity_set, query)
    kind = "delta read" if delta_link else "read"
    response = await transport.send(
        "GET", url, action=f"{kind} of {table.entity_set}", headers={"Prefer": prefer}
    )
    page = parse_page(table, _decode(response, table), delta_link_given=delta_link)
    if track_changes and page.is_last and page.delta_link is None:
        raise ConfigurationError(
            f"Dataverse returned no deltaLink for {table.entity_set}: turn on change tracking "
            f"for the table '{table.logical_name}' (Track changes in its properties)"
        )
    return page


async def iter_pages(
    transport: DataverseTransport,
    table: TableRef,
    columns: Sequence[str],
    *,
    delta_link: str | None = None,
    track_changes: bool = True,
    page_size: int = MAX_PAGE_SIZE,
    where: Filter | None = None,
    include_lookup_names: bool = False,
    max_pages: int | None = None,
) -> AsyncIterator[ChangePage]:
    """Every page of a full read (no ``delta_link``) or of the changes since ``delta_link``.

    For convenience; a sync that must survive restarts should call :func:`read_page` and store
    each page's link as it goes. A nextLink seen twice ends the loop with an error rather than
    spinning forever.

    Raises:
        ApiRequestError: the service repeated a nextLink, or ``max_pages`` was passed.
    """
    seen: set[str] = set()
    page = await read_page(
        transport,
        table,
        columns,
        delta_link=delta_link,
        track_changes=track_changes,
        page_size=page_size,
        where=where,
        include_lookup_names=include_lookup_names,
    )
    pages = 1
    yield page
    while page.next_link is not None:
        if page.next_link in seen:
            raise ApiRequestError(
                f"Dataverse repeated a nextLink while reading {table.entity_set}; stopping",
                system="dynamics",
            )
        if max_pages is not None and pages >= max_pages:
            raise ApiRequestError(
                f"Reading {table.entity_set} passed {max_pages} pages; stopping",
                system="dynamics",
            )
        seen.add(page.next_link)
        page = await read_page(
            transport,
            table,
            columns,
            next_link=page.next_link,
            track_changes=track_changes,
            page_size=page_size,
            include_lookup_names=include_lookup_names,
        )
        pages += 1
        yield page


async def read_records(
    transport: DataverseTransport,
    table: TableRef,
    ids: Iterable[str],
    columns: Sequence[str],
    *,
    include_lookup_names: bool = True,
) -> list[ChangedRecord]:
    """The current rows with these ids (missing ones are simply absent), read without tracking.

    This is how a delta's rows get the annotations a track-changes read cannot carry, such as
    whether an owner is a user or a team.
    """
    wanted = []
    for record_id in ids:
        if not is_guid(record_id):
            raise ValueError(f"not a GUID: {record_id!r}")
        wanted.append(record_id)
    found: list[ChangedRecord] = []
    for start in range(0, len(wanted), IDS_PER_READ):
        chunk = wanted[start : start + IDS_PER_READ]
        async for page in iter_pages(
            transport,
            table,
            columns,
            track_changes=False,
            where=one_of(table.id_attribute, [uuid.UUID(i) for i in chunk]),
            include_lookup_names=include_lookup_names,
        ):
            found.extend(page.records)
    return found


async def count(transport: DataverseTransport, table: TableRef) -> RecordCount:
    """How many rows the table has, for progress reporting.

    ``$count=true`` is exact up to 5,000 rows; past that, the ``RetrieveTotalRecordCount``
    snapshot (refreshed within the last 24 hours) is used and marked not exact. Two calls at
    most. (PAD ``webapi/query/count-rows.md``.)
    """
    url = transport.url(table.entity_set, {"$select": table.id_attribute, "$count": "true"})
    response = await transport.send(
        "GET",
        url,
        action=f"count of {table.entity_set}",
        headers={"Prefer": f'odata.maxpagesize=1,odata.include-annotations="{COUNT_ANNOTATIONS}"'},
    )
    body = _decode(response, table)
    value = body.get("@odata.count")
    if not isinstance(value, int):
        raise ApiRequestError(
            f"Dataverse count of {table.entity_set} returned no @odata.count", system="dynamics"
        )
    if body.get("@Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded") is not True:
        return RecordCount(value, exact=True)
    names = json.dumps([table.logical_name])
    snapshot_url = transport.url("RetrieveTotalRecordCount(EntityNames=@p1)", {"@p1": names})
    try:
        snapshot = await transport.send(
            "GET", snapshot_url, action=f"total record count of {table.logical_name}"
        )
    except ApiRequestError:
        # The count is for progress only: a lower bound beats failing the caller.
        return RecordCount(value, exact=False)
    collection = _decode(snapshot, table).get("EntityRecordCountCollection") or {}
    keys = collection.get("Keys") or []
    values = collection.get("Values") or []
    for key, total in zip(keys, values, strict=False):
        if key == table.logical_name and isinstance(total, int):
            return RecordCount(max(total, value), exact=False)
    return RecordCount(value, exact=False)
