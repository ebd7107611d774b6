"""Record writes (sync, delete) for every object type: batch, send, put results back in order."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from shared.marketo.batching import plan_batches
from shared.marketo.encoding import MAX_BODY_BYTES
from shared.marketo.models import RecordOutcome
from shared.marketo.outcomes import oversize_outcome, parse_outcomes
from shared.marketo.transport import MarketoTransport


async def write_records(
    transport: MarketoTransport,
    path: str,
    records: Sequence[Mapping[str, Any]],
    *,
    envelope: Mapping[str, Any],
    endpoint: str,
    server_timeout: float,
    answered: Callable[[RecordOutcome], None] | None = None,
) -> list[RecordOutcome]:
    """POST ``records`` to ``path`` in as few requests as the limits allow.

    ``answered`` is called with each outcome as soon as its batch is answered (oversize records
    first): when a later batch fails, the caller still knows what the earlier ones did.

    Batches go one after another, not in parallel: Marketo warns that "concurrent or closely
    timed upsert requests can create duplicate records" (reference B.4), and the same key may
    sit in two batches of one write.

    Returns:
        One outcome per input record, in input order (``outcome.index == position``).
    """
    plan = plan_batches(records, envelope, max_bytes=MAX_BODY_BYTES)
    outcomes: list[RecordOutcome | None] = [None] * len(records)
    for index, size in plan.oversize.items():
        refused = oversize_outcome(index, size, MAX_BODY_BYTES)
        outcomes[index] = refused
        if answered is not None:
            answered(refused)
    for batch in plan.batches:
        body = await transport.call(
            "POST", path, endpoint=endpoint, encoded_body=batch.body, server_timeout=server_timeout
        )
        for outcome in parse_outcomes(body.get("result"), batch.indices, what=endpoint):
            outcomes[outcome.index] = outcome
            if answered is not None:
                answered(outcome)
    assert all(o is not None for o in outcomes)
    return [o for o in outcomes if o is not None]
