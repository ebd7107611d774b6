"""Watermark rows in Table Storage, written with ETag optimistic concurrency.

A first save is a ``create`` (if two workers race to create, the second gets a conflict); every
later save is a REPLACE conditioned on the ETag the caller read, so of two workers that read the
same version only the first write lands and the other gets
:class:`~shared.errors.ConcurrencyConflict`. REPLACE (not MERGE) so a cursor that shrinks to
fewer parts leaves no stale parts behind.

The convenience methods (:meth:`WatermarkStore.start_run`, :meth:`~WatermarkStore.advance`, …)
read the current row, apply the pure rule from :mod:`shared.state.watermarks` and save: two
requests. The run ``sequence`` check covers the time between the caller's own read and this
one; the ETag covers the time between this read and the write.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

from shared.clock import Clock
from shared.errors import ConcurrencyConflict
from shared.state import odata
from shared.state.keys import encode_component
from shared.state.streams import StreamId
from shared.state.tables import TableAccess, TableKind, replace_if_unchanged, storage_errors
from shared.state.watermarks import (
    Phase,
    RunCounts,
    Watermark,
    advance,
    finish_run,
    from_entity,
    record_failure,
    reset,
    start_run,
    to_entity,
    with_creating,
    with_sweep,
)


class WatermarkStore:
    """Read and conditionally write watermarks."""

    def __init__(self, tables: TableAccess, clock: Clock) -> None:
        self._tables = tables
        self._clock = clock

    def get(self, stream: StreamId) -> Watermark:
        """The stored watermark, or a new one (``etag is None``) if the stream never ran."""
        client = self._tables.client(TableKind.WATERMARKS)
        try:
            with storage_errors(f"reading watermark {stream}", expected=(ResourceNotFoundError,)):
                entity = client.get_entity(stream.partition_key, stream.row_key)
        except ResourceNotFoundError:
            return Watermark(stream=stream)
        return from_entity(entity)

    def save(self, watermark: Watermark) -> Watermark:
        """Write ``watermark`` if nobody changed the row since it was read.

        Returns:
            The watermark with its new ETag.

        Raises:
            ConcurrencyConflict: another writer created or changed the row first.
        """
        client = self._tables.client(TableKind.WATERMARKS)
        entity = to_entity(watermark)
        action = f"saving watermark {watermark.stream}"
        try:
            if watermark.etag is None:
                with storage_errors(action, expected=(ResourceExistsError,)):
                    etag = _etag(client.create_entity(entity))
            else:
                etag = replace_if_unchanged(client, entity, watermark.etag, action)
        except (ResourceExistsError, ConcurrencyConflict):
            raise ConcurrencyConflict(
                f"{action}: another worker changed it first; re-read and retry",
                system="storage",
            ) from None
        return replace(watermark, etag=etag)

    def list(self, instance_id: str | None = None) -> list[Watermark]:
        """Every watermark of one instance (one partition query), or of all instances."""
        client = self._tables.client(TableKind.WATERMARKS)
        with storage_errors("listing watermarks"):
            if instance_id is None:
                rows = list(client.list_entities())
            else:
                query = odata.compare(
                    "PartitionKey", "eq", odata.string(encode_component(instance_id))
                )
                rows = list(client.query_entities(query))
        return [from_entity(row) for row in rows]

    def delete_instance(self, instance_id: str) -> int:
        """Delete every watermark of an instance; returns how many there were."""
        client = self._tables.client(TableKind.WATERMARKS)
        watermarks = self.list(instance_id)
        with storage_errors(f"deleting watermarks of {instance_id}"):
            for watermark in watermarks:
                client.delete_entity(watermark.stream.partition_key, watermark.stream.row_key)
        return len(watermarks)

    # --- read, apply a rule, save ---------------------------------------------------------

    def start_run(self, stream: StreamId) -> Watermark:
        """Open a new run (sequence + 1) and return the saved watermark."""
        return self.save(start_run(self.get(stream), self._now()))

    def advance(
        self,
        stream: StreamId,
        *,
        sequence: int,
        cursor: str,
        counts: RunCounts,
        phase: Phase | None = None,
        total_expected: int | None = None,
        status: str | None = None,
        finish: bool = False,
        fresh_copy: bool | None = None,
        step: int | None = None,
        sweep: str | None = None,
    ) -> Watermark:
        """Commit a page (see :func:`shared.state.watermarks.advance`)."""
        current = self.get(stream)
        return self.save(
            advance(
                current,
                sequence=sequence,
                cursor=cursor,
                counts=counts,
                now=self._now(),
                phase=phase,
                total_expected=total_expected,
                status=status,
                finish=finish,
                fresh_copy=fresh_copy,
                step=step,
                sweep=sweep,
            )
        )

    def set_sweep(
        self,
        stream: StreamId,
        *,
        sequence: int,
        sweep: str | None,
        status: str | None = None,
        finish: bool = False,
        step: int | None = None,
    ) -> Watermark:
        """Record the delete sweep's position (see :func:`shared.state.watermarks.with_sweep`)."""
        current = self.get(stream)
        return self.save(
            with_sweep(
                current,
                sequence=sequence,
                sweep=sweep,
                now=self._now(),
                status=status,
                finish=finish,
                step=step,
            )
        )

    def set_creating(
        self, stream: StreamId, *, sequence: int, step: int, ids: tuple[str, ...]
    ) -> Watermark:
        """Note the ids a page is about to create (:func:`.watermarks.with_creating`)."""
        current = self.get(stream)
        return self.save(
            with_creating(current, sequence=sequence, step=step, ids=ids, now=self._now())
        )

    def finish_run(
        self, stream: StreamId, *, sequence: int, status: str | None = None
    ) -> Watermark:
        """Close the current run without a page (see :func:`shared.state.watermarks.finish_run`)."""
        current = self.get(stream)
        return self.save(finish_run(current, sequence=sequence, now=self._now(), status=status))

    def record_failure(
        self, stream: StreamId, *, sequence: int, error: str, counts: RunCounts | None = None
    ) -> Watermark:
        """Note a failed run, keeping the cursor."""
        current = self.get(stream)
        return self.save(
            record_failure(current, sequence=sequence, error=error, now=self._now(), counts=counts)
        )

    def reset(self, stream: StreamId, *, status: str = "", keep_cursor: bool = False) -> Watermark:
        """Start the stream over (full resync); ``keep_cursor``: see :func:`reset`."""
        return self.save(
            reset(self.get(stream), now=self._now(), status=status, keep_cursor=keep_cursor)
        )

    def _now(self) -> datetime:
        return self._clock.now()


def _etag(metadata: Mapping[str, Any]) -> str | None:
    etag = metadata.get("etag")
    return None if etag is None else str(etag)
