"""Turning Marketo's per-record ``result`` array into :class:`RecordOutcome` values.

Facts (reference B.3, B.6; DEV error-codes.md "Record-Level"): the result array is "ordered in
the same way as the input array"; companies, opportunities, roles, sales persons and custom
objects also give ``seq``, the index of the record in the request. A skipped record carries
``reasons:[{code, message}]``. We place each item by ``seq`` when every item has a distinct one,
else by position, and refuse an answer whose length does not match the request: silently
pairing the wrong results with the wrong records would corrupt the ID mapping.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

from shared.errors import ApiRequestError
from shared.marketo.models import CLIENT_OVERSIZE_CODE, Reason, RecordOutcome, RecordStatus

_STATUSES = frozenset({"created", "updated", "deleted", "skipped"})


def _reasons(item: Mapping[str, Any]) -> tuple[Reason, ...]:
    raw = item.get("reasons")
    if not isinstance(raw, list):
        return ()
    return tuple(
        Reason(str(r.get("code", "")), str(r.get("message", "")))
        for r in raw
        if isinstance(r, Mapping)
    )


def _outcome(index: int, item: Mapping[str, Any]) -> RecordOutcome:
    reasons = _reasons(item)
    status = item.get("status")
    if status not in _STATUSES:
        if status is None and reasons:
            status = "skipped"
        else:
            status = "skipped"
            reasons = (*reasons, Reason("status", f"Marketo answered status {status!r}"))
    raw_id = item.get("id")
    guid = item.get("marketoGUID")
    seq = item.get("seq")
    return RecordOutcome(
        index=index,
        status=cast(RecordStatus, status),
        marketo_id=raw_id if isinstance(raw_id, int) and not isinstance(raw_id, bool) else None,
        marketo_guid=str(guid) if guid is not None else None,
        seq=seq if isinstance(seq, int) else None,
        reasons=reasons,
    )


def parse_outcomes(result: Any, indices: Sequence[int], *, what: str) -> list[RecordOutcome]:
    """Outcomes for one request, in request order, each tagged with its caller input position.

    Args:
        result: the ``result`` member of Marketo's answer.
        indices: the caller's input positions of the records in this request, in order.
        what: the operation, for the error message.

    Raises:
        ApiRequestError: the answer does not have one result per record sent.
    """
    items = result if isinstance(result, list) else []
    if len(items) != len(indices) or not all(isinstance(i, Mapping) for i in items):
        raise ApiRequestError(
            f"Marketo {what} answered {len(items)} results for {len(indices)} records; "
            "results cannot be matched to records",
            system="marketo",
        )
    seqs = [i.get("seq") for i in items]
    by_seq = all(isinstance(s, int) for s in seqs) and sorted(cast(list[int], seqs)) == list(
        range(len(items))
    )
    ordered: list[Mapping[str, Any]] = list(items)
    if by_seq:
        for item in items:
            ordered[cast(int, item["seq"])] = item
    return [_outcome(indices[pos], item) for pos, item in enumerate(ordered)]


def oversize_outcome(index: int, size: int, limit: int) -> RecordOutcome:
    """A record the client did not send because alone it exceeds the request body limit."""
    return RecordOutcome(
        index=index,
        status="skipped",
        reasons=(
            Reason(
                CLIENT_OVERSIZE_CODE,
                f"record needs a {size}-byte request body, over Marketo's {limit}-byte limit; "
                "not sent",
            ),
        ),
    )
