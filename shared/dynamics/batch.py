"""``$batch``: many writes in one request, each with its own result.

Format (reference §3; PAD ``webapi/execute-batch-operations-using-web-api.md``):

* ``POST $batch`` with ``Content-Type: multipart/mixed; boundary="batch_<id>"``; each part is
  ``Content-Type: application/http`` + ``Content-Transfer-Encoding: binary``, a blank line, then
  an HTTP request (``PATCH /api/data/v9.2/contacts(...) HTTP/1.1``, headers, blank, JSON).
* A change set is a nested ``multipart/mixed; boundary="changeset_<id>"`` part; its requests
  carry ``Content-ID: n`` and later ones in the same change set may refer to ``$n``. It is
  atomic: all or nothing.
* At most 1,000 requests per batch; larger lists are split here (a change set never is).
* With ``Prefer: odata.continue-on-error`` the response is 200 with one part per request, in
  request order, failures included. Without it, the first failure stops the batch and the
  response is a 400 multipart holding the responses up to that failure.

The operations and results are in :mod:`.batch_models`, the multipart builder and parser (pure
functions) in :mod:`.batch_multipart`; this module splits, sends and matches results.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import httpx

from shared.dynamics.batch_models import (
    MAX_BATCH_OPERATIONS,
    BatchItem,
    BatchItemResult,
    BatchOperation,
    ChangeSet,
    ParsedItem,
    ResponsePart,
)
from shared.dynamics.batch_multipart import (
    boundary_of,
    build_batch_body,
    content_id_map,
    parse_batch_response,
)
from shared.dynamics.error_mapping import map_error, parse_error_body
from shared.dynamics.transport import DataverseTransport
from shared.dynamics.writes import entity_id_from_url
from shared.errors import TransientServiceError
from shared.retry import parse_retry_after

__all__ = [
    "MAX_BATCH_OPERATIONS",
    "BatchItem",
    "BatchItemResult",
    "BatchOperation",
    "ChangeSet",
    "ParsedItem",
    "ResponsePart",
    "boundary_of",
    "build_batch_body",
    "chunk_items",
    "execute_batch",
    "match_results",
    "parse_batch_response",
    "result_for",
]


# A part's Retry-After is read as delta-seconds (what Dataverse sends, reference §4); an HTTP
# date there is measured from the epoch and so reads as "no wait": the caller's backoff applies.
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# --- building ---------------------------------------------------------------------------------


def _operation_count(item: BatchItem) -> int:
    return len(item.operations) if isinstance(item, ChangeSet) else 1


def chunk_items(items: Sequence[BatchItem], max_operations: int) -> list[list[BatchItem]]:
    """Split ``items`` into batches of at most ``max_operations`` requests, in order.

    Raises:
        ValueError: a single change set is larger than ``max_operations``.
    """
    if not 1 <= max_operations <= MAX_BATCH_OPERATIONS:
        raise ValueError(f"max_operations must be within 1..{MAX_BATCH_OPERATIONS}")
    chunks: list[list[BatchItem]] = []
    current: list[BatchItem] = []
    size = 0
    for item in items:
        n = _operation_count(item)
        if n > max_operations:
            raise ValueError(f"a change set of {n} operations exceeds {max_operations}")
        if size + n > max_operations:
            chunks.append(current)
            current, size = [], 0
        current.append(item)
        size += n
    if current:
        chunks.append(current)
    return chunks


# --- matching results -------------------------------------------------------------------------


def _json_body(part: ResponsePart) -> Any:
    if not part.body:
        return None
    try:
        return json.loads(part.body)
    except (ValueError, UnicodeDecodeError):
        return None


def result_for(op: BatchOperation, part: ResponsePart) -> BatchItemResult:
    """One operation's result from its response part."""
    body = _json_body(part)
    if 200 <= part.status < 300:
        record_id = entity_id_from_url(
            part.headers.get("OData-EntityId") or part.headers.get("Location")
        )
        if (
            isinstance(body, dict)
            and op.id_attribute
            and isinstance(body.get(op.id_attribute), str)
        ):
            record_id = body[op.id_attribute].lower()
        created: bool | None = {201: True, 200: False}.get(part.status)
        if op.method == "POST":
            created = True
        return BatchItemResult(op, part.status, record_id, created, body)
    error = map_error(
        part.status,
        parse_error_body(part.body),
        action=op.action,
        record=op.record,
        retry_after=parse_retry_after(part.headers.get("Retry-After"), _EPOCH),
        request_id=part.headers.get("REQ_ID"),
    )
    return BatchItemResult(op, part.status, body=body, error=error)


def _unanswered(op: BatchOperation, stopped: bool) -> BatchItemResult:
    reason = (
        "was not processed: the batch stopped at an earlier failure"
        if stopped
        else "got no response part"
    )
    return BatchItemResult(
        op,
        None,
        error=TransientServiceError(f"Dataverse {op.action} {reason}", system="dynamics"),
    )


def _changeset_results(
    changeset: ChangeSet, parsed: ParsedItem, content_ids: Sequence[str]
) -> list[BatchItemResult]:
    if isinstance(parsed, ResponsePart):
        # The whole change set failed as one response; every operation shares its outcome.
        return [result_for(op, parsed) for op in changeset.operations]
    by_id = {part.content_id: part for part in parsed if part.content_id is not None}
    # A change set is atomic: once any request in it failed, the others were rolled back (or
    # never ran), whatever their own parts say, so they share the failing request's error.
    failure = next((p for p in parsed if p.status >= 400), None)
    results = []
    for index, (op, content_id) in enumerate(zip(changeset.operations, content_ids, strict=True)):
        part = by_id.get(content_id) if by_id else (parsed[index] if index < len(parsed) else None)
        if failure is not None and (part is None or part.status < 400):
            part = failure
        results.append(result_for(op, part) if part is not None else _unanswered(op, False))
    return results


def match_results(
    items: Sequence[BatchItem], parsed: Sequence[ParsedItem], *, stopped: bool
) -> list[BatchItemResult]:
    """One result per operation, in request order (responses come in request order)."""
    content_ids = content_id_map(items)
    results: list[BatchItemResult] = []
    for index, item in enumerate(items):
        part = parsed[index] if index < len(parsed) else None
        if isinstance(item, ChangeSet):
            if part is None:
                results += [_unanswered(op, stopped) for op in item.operations]
            else:
                ids = [content_ids[index, n] for n in range(len(item.operations))]
                results += _changeset_results(item, part, ids)
        elif isinstance(part, ResponsePart):
            results.append(result_for(item, part))
        else:
            results.append(_unanswered(item, stopped))
    return results


# --- sending ----------------------------------------------------------------------------------


def _is_batch_failure(response: httpx.Response) -> bool:
    """A stop-on-error batch answers 400 with a multipart body: results, not a plain error."""
    return response.status_code == 400 and response.headers.get(
        "Content-Type", ""
    ).lower().startswith("multipart/")


async def execute_batch(
    transport: DataverseTransport,
    items: Sequence[BatchItem],
    *,
    continue_on_error: bool = True,
    max_operations: int = MAX_BATCH_OPERATIONS,
) -> list[BatchItemResult]:
    """Send ``items`` in as few ``$batch`` requests as the limit allows; one result per operation.

    Args:
        transport: the request loop.
        items: operations and change sets, in order.
        continue_on_error: send ``Prefer: odata.continue-on-error`` so one bad record does not
            stop the rest. Without it, operations after the first failure (in that batch and in
            later ones, which are then not sent) come back as not processed.
        max_operations: requests per ``$batch``, at most 1,000.

    A batch holding a create (POST) is not repeated after a timeout or 5xx (its creates may have
    landed); batches of updates, upserts and deletes are.

    Raises:
        DmsyncError: the batch request itself failed (throttled past the retry budget, auth,
            a malformed request). Per-operation failures are in the results instead.
    """
    results: list[BatchItemResult] = []
    stopped = False
    for chunk in chunk_items(items, max_operations):
        operations = [
            op
            for item in chunk
            for op in (item.operations if isinstance(item, ChangeSet) else (item,))
        ]
        if stopped:
            results += [_unanswered(op, True) for op in operations]
            continue
        batch_id = uuid.uuid4().hex
        headers = {"Content-Type": f'multipart/mixed; boundary="batch_{batch_id}"'}
        if continue_on_error:
            headers["Prefer"] = "odata.continue-on-error"
        api_path = httpx.URL(transport.api_root).path
        response = await transport.send(
            "POST",
            transport.url("$batch"),
            action=f"$batch of {len(operations)} operations",
            content=build_batch_body(chunk, api_path=api_path, batch_id=batch_id),
            headers=headers,
            idempotent=all(op.method != "POST" for op in operations),
            accept=_is_batch_failure,
        )
        transport.counters.batch_operations += len(operations)
        parsed = parse_batch_response(response.headers.get("Content-Type", ""), response.content)
        failed = response.status_code >= 400
        results += match_results(chunk, parsed, stopped=failed)
        stopped = failed and not continue_on_error
    return results
