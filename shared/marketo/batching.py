"""Splitting record writes into requests Marketo accepts: ≤ 300 records and ≤ 1 MB each.

Both limits are Marketo's (reference B.2). The body is serialised here, once per record, and the
request body is assembled from those pieces, so the size checked is exactly the size sent. Input
order is kept: a batch is a run of consecutive records, and every batch remembers the input
positions of its records so results can be put back in place. A record that alone makes a body
over the limit is not sent; it is reported by position so the caller can turn it into a
per-record failure instead of failing the whole write.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shared.marketo.encoding import MAX_BODY_BYTES, encode_json

MAX_BATCH_RECORDS = 300
"""Records per Lead Database write (reference B.2 "Batch: 300 records")."""


@dataclass(frozen=True)
class Batch:
    """One request's worth of records: their input positions and the exact body to send."""

    indices: list[int]
    body: bytes


@dataclass(frozen=True)
class BatchPlan:
    """How a write is split, and which records cannot be sent at all."""

    batches: list[Batch] = field(default_factory=list)
    oversize: dict[int, int] = field(default_factory=dict)
    """Input position → the body size that record alone would need."""


def _envelope_parts(envelope: Mapping[str, Any]) -> tuple[bytes, bytes]:
    """The body before and after the records: ``{...,"input":[`` and ``]}``."""
    if "input" in envelope:
        raise ValueError("the envelope must not contain 'input'; the records go there")
    empty = encode_json({**envelope, "input": []})
    # "input" is the last key (dicts keep insertion order), so the body ends with [] and }.
    assert empty.endswith(b"[]}")
    return empty[:-2], b"]}"


def plan_batches(
    records: Sequence[Mapping[str, Any]],
    envelope: Mapping[str, Any],
    *,
    max_records: int = MAX_BATCH_RECORDS,
    max_bytes: int = MAX_BODY_BYTES,
) -> BatchPlan:
    """Split ``records`` into bodies of the form ``{**envelope, "input": [...]}``.

    Args:
        records: the records, in the order the caller wants results back.
        envelope: the other members of the body (``action``, ``lookupField`` ...).
        max_records: records per request.
        max_bytes: bytes per request body.
    """
    if max_records < 1:
        raise ValueError("max_records must be at least 1")
    head, tail = _envelope_parts(envelope)
    fixed = len(head) + len(tail)
    plan = BatchPlan()
    pieces: list[bytes] = []
    indices: list[int] = []
    size = fixed

    def flush() -> None:
        nonlocal pieces, indices, size
        if pieces:
            plan.batches.append(Batch(indices, head + b",".join(pieces) + tail))
        pieces, indices, size = [], [], fixed

    for index, record in enumerate(records):
        piece = encode_json(record)
        if fixed + len(piece) > max_bytes:
            plan.oversize[index] = fixed + len(piece)
            continue
        separator = 1 if pieces else 0
        if len(pieces) >= max_records or size + separator + len(piece) > max_bytes:
            flush()
            separator = 0
        pieces.append(piece)
        indices.append(index)
        size += separator + len(piece)
    flush()
    return plan
