"""``$batch`` on the wire: the multipart request body and the multipart response, pure.

Each part is ``Content-Type: application/http`` + ``Content-Transfer-Encoding: binary``, a blank
line, then an HTTP request or response; a change set is a nested ``multipart/mixed`` part whose
requests carry ``Content-ID`` (PAD ``webapi/execute-batch-operations-using-web-api.md``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

import httpx

from shared.dynamics.batch_models import (
    BatchItem,
    BatchOperation,
    ChangeSet,
    ParsedItem,
    ResponsePart,
)
from shared.dynamics.transport import dump_json
from shared.errors import ApiRequestError

_CRLF = "\r\n"
_BOUNDARY = re.compile(r'boundary\s*=\s*(?:"([^"]+)"|([^;\s]+))', re.IGNORECASE)
_STATUS_LINE = re.compile(rb"^HTTP/\d(?:\.\d)?\s+(\d{3})")


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


def content_id_map(items: Sequence[BatchItem]) -> dict[tuple[int, int], str]:
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
    content_ids = content_id_map(items)
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
