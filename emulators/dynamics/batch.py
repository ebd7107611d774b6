"""``$batch``: multipart/mixed requests, change sets, ``Content-ID`` references and the
multipart response, as PAD ``webapi/execute-batch-operations-using-web-api.md`` describes.

Without ``Prefer: odata.continue-on-error`` the batch stops at the first failure and answers 400
with the parts processed so far, ending with that failure (the doc's example has the failure
first; including earlier successes is the OData 4.0 rule and our UNVERIFIED choice). With it,
every request runs and the batch answers 200. A failed change set is rolled back and answered by
its single error part.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from urllib.parse import urlsplit

from emulators.dynamics.errors import ODataError, bad_request
from emulators.dynamics.protocol import ApiRequest, ApiResponse, parse_prefer
from emulators.dynamics.webapi import WebApi

MAX_REQUESTS = 1000  # reference §3
API_MARKER = "/api/data/v9.2/"
_BOUNDARY = re.compile(r'boundary=(?:"([^"]+)"|([^;\s]+))', re.IGNORECASE)


@dataclass
class MimePart:
    """One body part: its MIME headers (lower-case names) and content."""

    headers: dict[str, str]
    content: bytes


@dataclass
class PartRequest:
    """An HTTP request carried in a part."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    content_id: str | None = None


@dataclass
class ChangeSet:
    """Requests that succeed or fail together."""

    requests: list[PartRequest] = field(default_factory=list)


def boundary_of(content_type: str | None) -> str:
    """The boundary parameter (quoted or not) of a multipart/mixed content type."""
    if not content_type or not content_type.lower().startswith("multipart/mixed"):
        raise bad_request(
            "A $batch request must have Content-Type multipart/mixed with a boundary."
        )
    match = _BOUNDARY.search(content_type)
    if match is None:
        raise bad_request("The multipart/mixed Content-Type has no boundary.")
    return match.group(1) or match.group(2)


def split_parts(body: bytes, boundary: str) -> list[MimePart]:
    """Split a multipart body into parts; accepts CRLF or LF line ends."""
    delimiter = b"--" + boundary.encode()
    if delimiter not in body:
        raise bad_request("The batch body does not contain its boundary.")
    chunks = body.split(delimiter)[1:]
    parts: list[MimePart] = []
    for chunk in chunks:
        if chunk.startswith(b"--"):
            break  # the close delimiter
        chunk = _strip_one_newline(chunk, leading=True)
        chunk = _strip_one_newline(chunk, leading=False)
        head, content = _split_head(chunk)
        parts.append(MimePart(_parse_headers(head), content))
    return parts


def _strip_one_newline(data: bytes, *, leading: bool) -> bytes:
    if leading:
        if data.startswith(b"\r\n"):
            return data[2:]
        return data[1:] if data.startswith(b"\n") else data
    if data.endswith(b"\r\n"):
        return data[:-2]
    return data[:-1] if data.endswith(b"\n") else data


def _split_head(data: bytes) -> tuple[bytes, bytes]:
    for separator in (b"\r\n\r\n", b"\n\n"):
        index = data.find(separator)
        if index >= 0:
            return data[:index], data[index + len(separator) :]
    return data, b""


def _parse_headers(head: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in head.decode("utf-8", "replace").splitlines():
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return headers


def parse_part_request(part: MimePart) -> PartRequest:
    """The HTTP request inside an ``application/http`` part."""
    head, body = _split_head(part.content)
    lines = head.decode("utf-8", "replace").splitlines()
    while lines and not lines[0].strip():
        lines.pop(0)
    if not lines:
        raise bad_request("A batch part has no request line.")
    request_line = lines[0].split()
    if len(request_line) < 2:
        raise bad_request(f"The batch request line '{lines[0]}' is not valid.")
    headers = _parse_headers("\n".join(lines[1:]).encode())
    return PartRequest(
        method=request_line[0].upper(),
        url=request_line[1],
        headers=headers,
        body=body.strip(),
        content_id=part.headers.get("content-id"),
    )


def parse_batch(body: bytes, content_type: str | None) -> list[PartRequest | ChangeSet]:
    """The batch's items in order: single requests and change sets."""
    items: list[PartRequest | ChangeSet] = []
    for part in split_parts(body, boundary_of(content_type)):
        part_type = part.headers.get("content-type", "").lower()
        if part_type.startswith("multipart/mixed"):
            changeset = ChangeSet()
            for inner in split_parts(part.content, boundary_of(part.headers["content-type"])):
                request = parse_part_request(inner)
                if request.method == "GET":
                    raise bad_request("GET requests are not allowed inside a change set.")
                changeset.requests.append(request)
            items.append(changeset)
        else:
            items.append(parse_part_request(part))
    total = sum(len(i.requests) if isinstance(i, ChangeSet) else 1 for i in items)
    if total > MAX_REQUESTS:
        raise bad_request(
            f"The number of requests in the batch ({total}) exceeds the limit of {MAX_REQUESTS}."
        )
    return items


@dataclass
class PartResult:
    """A response to render, with the Content-ID it answers."""

    response: ApiResponse
    content_id: str | None = None
    location: str | None = None


class BatchExecutor:
    """Runs a parsed batch against the Web API."""

    def __init__(
        self,
        api: WebApi,
        outer: ApiRequest,
        observer: Callable[[str, str], None] | None = None,
    ) -> None:
        self.api = api
        self.outer = outer
        self.observer = observer

    def _inner_request(self, part: PartRequest, content_ids: dict[str, str]) -> ApiRequest:
        url = part.url
        if url.startswith("$"):
            ref, _, rest = url[1:].partition("/")
            resolved = content_ids.get(ref)
            if resolved is None:
                raise bad_request(
                    f"Content-ID Reference: '${ref}' does not exist in the batch context."
                )
            url = resolved + (f"/{rest}" if rest else "")
        split = urlsplit(url)
        path = split.path
        if API_MARKER in path:
            path = path.split(API_MARKER, 1)[1]
        elif path.rstrip("/").endswith("/api/data/v9.2"):
            path = ""
        path = path.lstrip("/")
        if self.observer is not None:
            self.observer(part.method, path.split("/")[0].split("(")[0] or "/")
        if path.split("(")[0].split("/")[0] == "$batch":
            raise bad_request("Nested batch requests are not supported.")
        return ApiRequest(
            method=part.method,
            path=path,
            query=split.query,
            headers=part.headers,
            body=part.body,
            base_url=self.outer.base_url,
            principal=self.outer.principal,
            content_ids=content_ids,
            in_batch=True,
        )

    def run(self, items: list[PartRequest | ChangeSet]) -> ApiResponse:
        """Execute in order; render the multipart response."""
        continue_on_error = parse_prefer(self.outer.header("prefer")).continue_on_error
        results: list[PartResult | list[PartResult]] = []
        failed = False
        for item in items:
            if isinstance(item, ChangeSet):
                result = self._run_changeset(item)
                ok = isinstance(result, list)
            else:
                single = self._run_single(item)
                result, ok = single, single.response.status < 400
            results.append(result)
            if not ok:
                failed = True
                if not continue_on_error:
                    break
        status = 400 if failed and not continue_on_error else 200
        return render(results, status)

    def _run_single(self, part: PartRequest) -> PartResult:
        try:
            request = self._inner_request(part, {})
            response, url = self.api.dispatch(request)
        except ODataError as exc:
            return PartResult(ApiResponse.error(exc), part.content_id)
        return PartResult(response, part.content_id, url)

    def _run_changeset(self, changeset: ChangeSet) -> PartResult | list[PartResult]:
        content_ids: dict[str, str] = {}
        done: list[PartResult] = []
        current: PartRequest | None = None
        try:
            with self.api.env.db.transaction():
                for part in changeset.requests:
                    current = part
                    request = self._inner_request(part, content_ids)
                    response, url = self.api.dispatch(request)  # raises on failure
                    if part.content_id and url:
                        content_ids[part.content_id] = url
                    done.append(PartResult(response, part.content_id, url))
        except ODataError as exc:
            return PartResult(ApiResponse.error(exc), current.content_id if current else None)
        return done


def _status_line(status: int) -> str:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Unknown"
    return f"HTTP/1.1 {status} {phrase}"


def _render_part(result: PartResult) -> bytes:
    response = result.response
    lines = ["Content-Type: application/http", "Content-Transfer-Encoding: binary"]
    if result.content_id:
        lines.append(f"Content-ID: {result.content_id}")
    lines.append("")
    lines.append(_status_line(response.status))
    headers = dict(response.headers)
    if "Content-Type" in headers and response.status < 400:
        headers["Content-Type"] = headers["Content-Type"] + "; odata.streaming=true"
    if result.location and "OData-EntityId" in headers:
        headers = {"OData-Version": "4.0", "Location": result.location, **headers}
    lines.extend(f"{k}: {v}" for k, v in headers.items())
    lines.append("")
    text = "\r\n".join(lines) + "\r\n"
    body = response.body
    return text.encode() + body + b"\r\n"


def render(results: list[PartResult | list[PartResult]], status: int) -> ApiResponse:
    """The multipart/mixed batch response in request order."""
    boundary = f"batchresponse_{uuid.uuid4()}"
    out = bytearray()
    for result in results:
        out += f"--{boundary}\r\n".encode()
        if isinstance(result, list):
            inner = f"changesetresponse_{uuid.uuid4()}"
            out += f"Content-Type: multipart/mixed; boundary={inner}\r\n\r\n".encode()
            for part in result:
                out += f"--{inner}\r\n".encode() + _render_part(part)
            out += f"--{inner}--\r\n".encode()
        else:
            out += _render_part(result)
    out += f"--{boundary}--\r\n".encode()
    return ApiResponse(
        status,
        {"Content-Type": f"multipart/mixed; boundary={boundary}", "OData-Version": "4.0"},
        bytes(out),
    )


def execute_batch(
    api: WebApi, outer: ApiRequest, observer: Callable[[str, str], None] | None = None
) -> ApiResponse:
    """``POST $batch``; ``observer(method, resource)`` sees every part."""
    try:
        items = parse_batch(outer.body, outer.header("content-type"))
        return BatchExecutor(api, outer, observer).run(items)
    except ODataError as exc:
        return ApiResponse.error(exc)
