"""Single-record writes: create, update, upsert (by GUID or alternate key) and delete.

Protocol facts (reference §3):

* create: ``POST <set>`` → 204 and ``OData-EntityId: .../<set>(<guid>)`` (``Location`` as a
  fallback); with ``Prefer: return=representation``, 201 and the row in the body instead.
* update: ``PATCH <set>(<guid>)`` with ``If-Match: *``, so a missing row is a 404, never a
  silent create.
* upsert: ``PATCH <set>(<key>)`` without ``If-Match``. We ask for ``return=representation``
  with ``$select=<primary key>``: 201 means created, 200 updated, and the body has the GUID
  even when the key was an alternate key (a plain 204 names the key, not the GUID).
* delete: ``DELETE <set>(<guid>)`` → 204, or 404 when the row is gone.

A failure about the record becomes a :class:`~shared.errors.RecordError` naming the table and
record, so the caller can log it and go on with the rest of its batch.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any

import httpx

from shared.dynamics.error_mapping import truncate
from shared.dynamics.models import TableRef, WriteResult
from shared.dynamics.odata import KeyValue, guid_literal, is_guid, key_segment
from shared.dynamics.transport import DataverseTransport, decode_json
from shared.errors import RecordError, RecordRef

RecordKey = str | uuid.UUID | Mapping[str, KeyValue]
"""A GUID, or an alternate key as column → value (a lookup key column takes a UUID)."""

_GUID_IN_PARENS = re.compile(
    r"\(([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\)\s*$"
)


def _guid_of(key: RecordKey | None) -> str | None:
    if isinstance(key, str | uuid.UUID) and is_guid(key):
        return guid_literal(key)
    return None


def record_ref(table: TableRef, key: RecordKey | None) -> RecordRef:
    """The taxonomy's reference to a record: its table, and its GUID when the key is one."""
    return RecordRef(entity=table.logical_name, dynamics_id=_guid_of(key))


def record_path(table: TableRef, key: RecordKey) -> str:
    """``<entity set>(<key>)``, relative to the API root.

    Raises:
        RecordError: the key cannot address a record (bad GUID, unsupported characters).
    """
    try:
        return table.entity_set + key_segment(key)
    except ValueError as exc:
        raise RecordError(
            f"Cannot address a {table.logical_name} record: {exc}",
            record=record_ref(table, None),
            system="dynamics",
        ) from None


def entity_id_from_url(url: str | None) -> str | None:
    """The GUID at the end of an ``OData-EntityId``/``Location`` URL, if it is in GUID form."""
    if not url:
        return None
    match = _GUID_IN_PARENS.search(url)
    return match.group(1).lower() if match else None


def _result(response: httpx.Response, table: TableRef) -> WriteResult:
    entity_url = response.headers.get("OData-EntityId") or response.headers.get("Location")
    record_id = entity_id_from_url(entity_url)
    etag = response.headers.get("ETag")
    if response.status_code in (200, 201):
        body = decode_json(response, f"write of a {table.logical_name}")
        if isinstance(body, dict):
            value = body.get(table.id_attribute)
            record_id = value.lower() if isinstance(value, str) else record_id
            tag = body.get("@odata.etag")
            etag = tag if isinstance(tag, str) else etag
    return WriteResult(id=record_id, entity_url=entity_url, etag=etag)


async def create(
    transport: DataverseTransport,
    table: TableRef,
    attributes: Mapping[str, Any],
    *,
    return_representation: bool = False,
) -> WriteResult:
    """Create a row; the result carries its new GUID.

    A create is not idempotent, so the transport repeats it only when the request certainly did
    not reach Dataverse. Prefer :func:`upsert` by an alternate key where one exists.
    """
    headers = {"Prefer": "return=representation"} if return_representation else {}
    url = transport.url(table.entity_set)
    if return_representation:
        url = transport.url(table.entity_set, {"$select": table.id_attribute})
    response = await transport.send(
        "POST",
        url,
        action=f"create of a {table.logical_name}",
        body=dict(attributes),
        headers=headers,
        record=record_ref(table, None),
    )
    result = _result(response, table)
    return WriteResult(result.id, result.entity_url, True, result.etag)


async def update(
    transport: DataverseTransport,
    table: TableRef,
    record_id: str | uuid.UUID,
    attributes: Mapping[str, Any],
) -> WriteResult:
    """Change columns of an existing row; a missing row is a RecordError (404), not a create."""
    path = record_path(table, record_id)
    response = await transport.send(
        "PATCH",
        transport.url(path),
        action=f"update of {path}",
        body=dict(attributes),
        headers={"If-Match": "*"},
        record=record_ref(table, record_id),
    )
    result = _result(response, table)
    return WriteResult(result.id or guid_literal(record_id), result.entity_url, False, result.etag)


async def upsert(
    transport: DataverseTransport,
    table: TableRef,
    key: RecordKey,
    attributes: Mapping[str, Any],
) -> WriteResult:
    """Create or update the row with this key; the result says which, and gives its GUID.

    Don't repeat the key columns in ``attributes``: Dataverse copies them from the key for a
    new row and ignores them for an existing one (reference §3).
    """
    path = record_path(table, key)
    response = await transport.send(
        "PATCH",
        transport.url(path, {"$select": table.id_attribute}),
        action=f"upsert of {truncate(path, 200)}",
        body=dict(attributes),
        headers={"Prefer": "return=representation"},
        record=record_ref(table, key),
    )
    result = _result(response, table)
    created = {201: True, 200: False}.get(response.status_code)
    record_id = result.id or _guid_of(key)
    return WriteResult(record_id, result.entity_url, created, result.etag)


async def delete(
    transport: DataverseTransport,
    table: TableRef,
    record_id: str | uuid.UUID,
    *,
    missing_ok: bool = False,
) -> bool:
    """Delete a row. Returns False when it was already gone and ``missing_ok`` is set.

    ``missing_ok`` makes a repeated delete (say, after a timeout whose first try did land)
    succeed instead of failing with a 404 RecordError.
    """
    path = record_path(table, record_id)
    response = await transport.send(
        "DELETE",
        transport.url(path),
        action=f"delete of {path}",
        record=record_ref(table, record_id),
        accept=(lambda r: r.status_code == 404) if missing_ok else None,
    )
    return response.status_code != 404
