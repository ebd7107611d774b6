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

The builder and parser are pure functions; :func:`execute_batch` sends the chunks.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeAlias

import httpx

from shared.dynamics.error_mapping import map_error, parse_error_body, truncate
from shared.dynamics.models import TableRef
from shared.dynamics.transport import DataverseTransport, dump_json
from shared.dynamics.writes import RecordKey, entity_id_from_url, record_path, record_ref
from shared.errors import ApiRequestError, DmsyncError, RecordRef, TransientServiceError
from shared.retry import parse_retry_after

MAX_BATCH_OPERATIONS = 1000
"""Dataverse's limit of requests in one ``$batch`` (reference §3)."""

_CRLF = "\r\n"
_BOUNDARY = re.compile(r'boundary\s*=\s*(?:"([^"]+)"|([^;\s]+))', re.IGNORECASE)
_STATUS_LINE = re.compile(rb"^HTTP/\d(?:\.\d)?\s+(\d{3})")
# A part's Retry-After is read as delta-seconds (what Dataverse sends, reference §4); an HTTP
# date there is measured from the epoch and so reads as "no wait": the caller's backoff applies.
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


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


def _request_lines(op: BatchOperation, api_path: str, content_id: str | None) -> list[str]:
    target = op.resource if op.resource.startswith("$") else api_path + op.resource
    lines = ["Content-Type: application/http", "Content-Transfer-Encoding: binary"]
    if content_id is not None:
        lines.append(f"Content-ID: {content_id}")
    lines += ["", f"{op.method} {target} HTTP/1.1"]
    if op.body is not None:
        lines.append("Content-Type: application/json; type=entry")
    lines += [f"{name}: {value}" for name, value in op.headers.items()]
    lines.append("")
    lines.append(dump_json(op.body).decode() if op.body is not None else "")
    return lines


def _content_ids(items: Sequence[BatchItem]) -> dict[tuple[int, int], str]:
    """A Content-ID for every change-set operation (OData requires one), unique in the batch.

    Keyed by (item index, operation index); explicit ids are kept, the rest numbered around them.
    """
    taken = {
        op.content_id
        for item in items
        if isinstance(item, ChangeSet)
        for op in item.operations
        if op.content_id is not None
    }
    assigned: dict[tuple[int, int], str] = {}
    counter = 0
    for item_index, item in enumerate(items):
        if not isinstance(item, ChangeSet):
            continue
        for op_index, op in enumerate(item.operations):
            if op.content_id is None:
                counter += 1
                while str(counter) in taken:
                    counter += 1
            assigned[item_index, op_index] = op.content_id or str(counter)
    return assigned


def build_batch_body(items: Sequence[BatchItem], *, api_path: str, batch_id: str) -> bytes:
    """The multipart body of one ``$batch`` request (its boundary is ``batch_<batch_id>``).

    Args:
        items: operations and change sets, in order.
        api_path: the API root's path, e.g. ``/api/data/v9.2/``.
        batch_id: a unique id for the boundaries.
    """
    boundary = f"batch_{batch_id}"
    content_ids = _content_ids(items)
    lines: list[str] = []
    for index, item in enumerate(items):
        lines.append(f"--{boundary}")
        if isinstance(item, ChangeSet):
            changeset = f"changeset_{batch_id}_{index}"
            lines += [f'Content-Type: multipart/mixed; boundary="{changeset}"', ""]
            for op_index, op in enumerate(item.operations):
                lines.append(f"--{changeset}")
                lines += _request_lines(op, api_path, content_ids[index, op_index])
            lines.append(f"--{changeset}--")
        else:
            lines += _request_lines(item, api_path, item.content_id)
    lines.append(f"--{boundary}--")
    lines.append("")
    return _CRLF.join(lines).encode()


# --- parsing ----------------------------------------------------------------------------------


def boundary_of(content_type: str) -> str | None:
    """The ``boundary`` parameter of a multipart Content-Type, quoted or not."""
    match = _BOUNDARY.search(content_type or "")
    return (match.group(1) or match.group(2)) if match else None


def _split_head(block: bytes) -> tuple[bytes, bytes]:
    """Headers and content, at the first blank line (CRLF or bare LF)."""
    match = re.search(rb"\r?\n\r?\n", block)
    if match is None:
        return block, b""
    return block[: match.start()], block[match.end() :]


def _headers(block: bytes) -> httpx.Headers:
    headers = httpx.Headers()
    for line in re.split(rb"\r?\n", block):
        name, sep, value = line.partition(b":")
        if sep and name.strip():
            headers[name.strip().decode("latin-1")] = value.strip().decode("latin-1")
    return headers


def _multipart_bodies(body: bytes, boundary: str) -> Iterator[bytes]:
    delimiter = re.compile(rb"(?:\A|\r?\n)--" + re.escape(boundary.encode()))
    segments = delimiter.split(body)
    for segment in segments[1:]:
        if segment.startswith(b"--"):
            return
        yield re.sub(rb"\A[ \t]*\r?\n", b"", segment, count=1)


def _http_response(part_headers: httpx.Headers, content: bytes) -> ResponsePart:
    head, body = _split_head(content.lstrip(b"\r\n"))
    status_line, _, header_block = head.partition(b"\n")
    match = _STATUS_LINE.match(status_line.strip())
    if match is None:
        raise ApiRequestError(
            "Dataverse $batch response part has no HTTP status line", system="dynamics"
        )
    return ResponsePart(
        int(match.group(1)),
        _headers(header_block),
        body.strip(),
        part_headers.get("Content-ID"),
    )


def parse_batch_response(content_type: str, body: bytes) -> list[ParsedItem]:
    """The top-level parts of a ``$batch`` response, in order; change sets as lists.

    Raises:
        ApiRequestError: the response is not a multipart with a boundary.
    """
    boundary = boundary_of(content_type)
    if not content_type.lower().startswith("multipart/") or boundary is None:
        raise ApiRequestError(
            "Dataverse $batch response is not multipart/mixed with a boundary",
            system="dynamics",
        )
    items: list[ParsedItem] = []
    for block in _multipart_bodies(body, boundary):
        head, content = _split_head(block)
        part_headers = _headers(head)
        part_type = part_headers.get("Content-Type", "")
        if part_type.lower().startswith("multipart/"):
            inner = boundary_of(part_type)
            if inner is None:
                raise ApiRequestError(
                    "Dataverse change set response has no boundary", system="dynamics"
                )
            changeset: list[ResponsePart] = []
            for inner_block in _multipart_bodies(content, inner):
                inner_head, inner_content = _split_head(inner_block)
                changeset.append(_http_response(_headers(inner_head), inner_content))
            items.append(changeset)
        else:
            items.append(_http_response(part_headers, content))
    return items


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
    content_ids = _content_ids(items)
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


def _flatten(items: Sequence[BatchItem]) -> list[BatchOperation]:
    return [
        op for item in items for op in (item.operations if isinstance(item, ChangeSet) else (item,))
    ]


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
