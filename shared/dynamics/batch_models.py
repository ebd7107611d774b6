"""``$batch`` operations and results (PAD ``webapi/execute-batch-operations-using-web-api.md``)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import httpx

from shared.dynamics.error_mapping import truncate
from shared.dynamics.models import TableRef
from shared.dynamics.writes import RecordKey, record_path, record_ref
from shared.errors import DmsyncError, RecordRef

MAX_BATCH_OPERATIONS = 1000
"""Dataverse's limit of requests in one ``$batch``."""


@dataclass(frozen=True)
class BatchOperation:
    """One request inside a batch.

    ``resource`` is relative to the API root (``contacts(<guid>)``) or a change-set reference
    (``$1``). Build them with the class methods, which escape keys and set the right headers.
    """

    method: str
    resource: str
    body: Mapping[str, Any] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    content_id: str | None = None
    record: RecordRef | None = None
    id_attribute: str | None = None
    """The primary key column, to read the id from a returned representation."""

    @property
    def action(self) -> str:
        """The request in words, for messages."""
        return f"{self.method} {truncate(self.resource, 200)} in $batch"

    @classmethod
    def create(
        cls, table: TableRef, attributes: Mapping[str, Any], *, content_id: str | None = None
    ) -> BatchOperation:
        """Create a row (``POST <set>``); its GUID comes back in the result."""
        return cls(
            "POST",
            table.entity_set,
            dict(attributes),
            content_id=content_id,
            record=record_ref(table, None),
            id_attribute=table.id_attribute,
        )

    @classmethod
    def update(
        cls,
        table: TableRef,
        record_id: str | uuid.UUID,
        attributes: Mapping[str, Any],
        *,
        content_id: str | None = None,
    ) -> BatchOperation:
        """Update an existing row (``If-Match: *``: a missing row fails rather than appears).

        Raises:
            RecordError: the id is not a GUID.
        """
        return cls(
            "PATCH",
            record_path(table, record_id),
            dict(attributes),
            {"If-Match": "*"},
            content_id,
            record_ref(table, record_id),
            table.id_attribute,
        )

    @classmethod
    def upsert(
        cls,
        table: TableRef,
        key: RecordKey,
        attributes: Mapping[str, Any],
        *,
        content_id: str | None = None,
    ) -> BatchOperation:
        """Create or update by GUID or alternate key; the result says which, with the GUID.

        Raises:
            RecordError: the key cannot address a record (bad GUID, unsupported characters).
        """
        return cls(
            "PATCH",
            f"{record_path(table, key)}?$select={table.id_attribute}",
            dict(attributes),
            {"Prefer": "return=representation"},
            content_id,
            record_ref(table, key),
            table.id_attribute,
        )

    @classmethod
    def delete(
        cls, table: TableRef, record_id: str | uuid.UUID, *, content_id: str | None = None
    ) -> BatchOperation:
        """Delete a row.

        Raises:
            RecordError: the id is not a GUID.
        """
        return cls(
            "DELETE",
            record_path(table, record_id),
            None,
            {},
            content_id,
            record_ref(table, record_id),
            table.id_attribute,
        )


@dataclass(frozen=True)
class ChangeSet:
    """Operations applied atomically; later ones may refer to earlier ``Content-ID`` s as ``$n``."""

    operations: tuple[BatchOperation, ...]

    def __post_init__(self) -> None:
        if not self.operations:
            raise ValueError("a change set needs at least one operation")
        if any(op.method == "GET" for op in self.operations):
            raise ValueError("a change set cannot hold a GET (reference §3)")


BatchItem: TypeAlias = BatchOperation | ChangeSet


@dataclass(frozen=True)
class BatchItemResult:
    """The outcome of one operation: its status, the row's GUID if known, or the mapped error."""

    operation: BatchOperation
    status: int | None
    id: str | None = None
    created: bool | None = None
    body: Any = None
    error: DmsyncError | None = None

    @property
    def ok(self) -> bool:
        """True when the operation succeeded."""
        return self.error is None


@dataclass(frozen=True)
class ResponsePart:
    """One HTTP response inside a batch response."""

    status: int
    headers: httpx.Headers
    body: bytes
    content_id: str | None = None


ParsedItem: TypeAlias = ResponsePart | list[ResponsePart]
"""A top-level part: a response, or the responses of a change set."""
