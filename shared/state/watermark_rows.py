"""Watermark rows: a :class:`~shared.state.watermarks.Watermark` to a table row and back."""

from __future__ import annotations

from typing import Any

from shared.state.properties import (
    int64,
    read_datetime,
    read_int,
    read_long_text,
    read_optional_int,
    read_str,
    truncate,
    utc,
    write_long_text,
)
from shared.state.streams import StreamId
from shared.state.watermarks import MAX_ERROR_CHARS, SCHEMA_VERSION, Phase, RunCounts, Watermark


def to_entity(watermark: Watermark) -> dict[str, Any]:
    """The table row for ``watermark`` (cursor split over parts when long)."""
    entity: dict[str, Any] = {
        "PartitionKey": watermark.stream.partition_key,
        "RowKey": watermark.stream.row_key,
        "schema": SCHEMA_VERSION,
        "phase": watermark.phase.value,
        "records_read": int64(watermark.counts.read),
        "records_written": int64(watermark.counts.written),
        "records_skipped": int64(watermark.counts.skipped),
        "records_failed": int64(watermark.counts.failed),
        "sequence": int64(watermark.sequence),
        "step": int64(watermark.step),
        "status": watermark.status,
        "run_open": watermark.run_open,
        "resync": watermark.resync,
        "fresh_copy": watermark.fresh_copy,
    }
    if watermark.sweep is not None:
        entity["sweep"] = watermark.sweep
    entity.update(write_long_text("cursor", watermark.cursor))
    if watermark.creating:
        entity.update(write_long_text("creating", ",".join(watermark.creating)))
    if watermark.recent:
        entity["recent"] = watermark.recent
    if watermark.resume_cursor is not None:
        entity.update(write_long_text("resume_cursor", watermark.resume_cursor))
    if watermark.total_expected is not None:
        entity["total_expected"] = int64(watermark.total_expected)
    if watermark.last_error is not None:
        entity["last_error"] = truncate(watermark.last_error, MAX_ERROR_CHARS)
    for name in ("last_run_at", "last_success_at", "updated_at"):
        value = getattr(watermark, name)
        if value is not None:
            entity[name] = utc(value)
    return entity


def from_entity(entity: Any) -> Watermark:
    """The watermark stored in ``entity`` (a ``TableEntity`` or a plain mapping)."""
    metadata = getattr(entity, "metadata", None) or {}
    return Watermark(
        stream=StreamId.from_keys(entity["PartitionKey"], entity["RowKey"]),
        phase=Phase(entity.get("phase", Phase.INITIAL.value)),
        cursor=read_long_text(entity, "cursor"),
        counts=RunCounts(
            read=read_int(entity, "records_read"),
            written=read_int(entity, "records_written"),
            skipped=read_int(entity, "records_skipped"),
            failed=read_int(entity, "records_failed"),
        ),
        total_expected=read_optional_int(entity, "total_expected"),
        sequence=read_int(entity, "sequence"),
        step=read_int(entity, "step"),
        last_run_at=read_datetime(entity, "last_run_at"),
        last_success_at=read_datetime(entity, "last_success_at"),
        last_error=read_str(entity, "last_error"),
        status=read_str(entity, "status") or "",
        updated_at=read_datetime(entity, "updated_at"),
        run_open=bool(entity.get("run_open", False)),
        resync=bool(entity.get("resync", False)),
        fresh_copy=bool(entity.get("fresh_copy", False)),
        sweep=entity.get("sweep"),
        creating=tuple(filter(None, (read_long_text(entity, "creating") or "").split(","))),
        resume_cursor=read_long_text(entity, "resume_cursor"),
        recent=read_str(entity, "recent") or "",
        etag=metadata.get("etag"),
    )
