"""Entity-group transactions (``$batch``) written and read as plain text.

``TableClient.submit_transaction`` builds every operation as an azure-core request object,
serialises the multipart body with the standard library's ``email`` package and parses the
answer with it again. In the sync's hot path (two mapping rows per synced record) that cost
about 600 µs of CPU per row, most of the sync process's CPU (py-spy profile, ``make bench``).
This module sends the same request, built as text, and splits the answer on its boundaries:
a few µs per row.

The protocol (Table service "Performing entity group transactions"; reference §8): one
``POST <account>/$batch`` whose ``multipart/mixed`` body holds one changeset; the changeset
holds up to 100 operations on one partition, each an ``application/http`` part with its own
request line, headers and JSON body. The answer is ``202`` with one part per operation in
order, or, if the transaction failed (and applied nothing), a single part with the failure,
whose message starts with the failed operation's index (``"1:The specified resource ..."``).

What stays the SDK's:

* the client's request pipeline: authentication (shared key or Entra token), retries, the
  ``x-ms-date``/``x-ms-version`` headers, logging. The request goes through the same
  ``send_request`` the SDK's own ``_batch_send`` uses;
* the errors: a transaction the service refused applied nothing, so it is submitted once more
  through ``TableClient.submit_transaction``, which raises exactly what callers already handle
  (``TableTransactionError`` with ``index``, ``RequestTooLargeError``, ...) — or succeeds, if
  the table changed in between, which is then the outcome;
* anything this module does not know: Cosmos DB endpoints, SAS URLs, option or value types it
  does not encode go through ``submit_transaction`` unchanged.

Entity values are encoded as the SDK encodes them (``_add_entity_properties``): ``str``, ``bool``
and 32-bit ``int`` as plain JSON, ``float`` as ``Edm.Double``, ``datetime`` as ``Edm.DateTime``
(UTC, microseconds, ``Z``; a value read from a table keeps its own text),
``EntityProperty``/``(value, EdmType)`` with their type, ``None`` left out; anything else
(enums, bytes, GUIDs, NaN ...) goes to the SDK. The SDK also annotates every string as
``Edm.String``; that is the default type of an un-annotated string, so it is left out here.
"""

from __future__ import annotations

import functools
import json
import math
import re
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from email.utils import formatdate
from typing import Any
from urllib.parse import quote

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError
from azure.core.rest import HttpRequest
from azure.data.tables import EdmType, EntityProperty, TableClient, UpdateMode

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
_CHANGESET_BOUNDARY = re.compile(r"boundary=(changesetresponse_[^\s;\"]+)")
_STATUS_LINE = re.compile(r"^HTTP/1\.1 (\d{3})", re.MULTILINE)
_ETAG = re.compile(r"^ETag: *(.+?)\r?$", re.MULTILINE | re.IGNORECASE)
_KNOWN_OPTIONS = frozenset({"mode", "etag", "match_condition"})


class Unsupported(Exception):
    """This operation is for the SDK's own path (see the module docstring)."""


# --- encoding ---------------------------------------------------------------------------------


def _datetime_text(value: datetime) -> str:
    """As the SDK's ``_to_entity_datetime``: a value read from a table keeps its service text
    (100 ns precision); others are converted to UTC (naive ones taken as local time)."""
    original = getattr(value, "tables_service_value", None)
    if isinstance(original, str) and original:
        return original
    return _utc_text(value)


@functools.lru_cache(maxsize=256)
def _utc_text(value: datetime) -> str:
    # Cached: the rows of one write share their timestamps (a mapping carries the same "now"
    # three times), and formatting is a visible share of encoding a row.
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def _put_typed(out: dict[str, Any], name: str, value: Any, edm: EdmType) -> None:
    """``out[name]`` (and its ``@odata.type`` where the SDK writes one) for a typed value."""
    if edm is EdmType.STRING:
        out[name] = str(value)
    elif edm is EdmType.INT64:
        out[name] = str(int(value))
        out[name + "@odata.type"] = edm.value
    elif edm is EdmType.INT32:
        number = int(value)
        if not INT32_MIN <= number <= INT32_MAX:
            raise Unsupported(name)
        out[name] = number
    elif edm is EdmType.BOOLEAN:
        out[name] = bool(value)
    elif edm is EdmType.DOUBLE and isinstance(value, int | float) and math.isfinite(value):
        out[name] = float(value)
        out[name + "@odata.type"] = edm.value
    elif edm is EdmType.DATETIME and isinstance(value, datetime):
        out[name] = _datetime_text(value)
        out[name + "@odata.type"] = edm.value
    else:
        raise Unsupported(name)


def encode_entity(entity: Mapping[str, Any]) -> str:
    """The JSON body of one entity, typed as the SDK types it.

    Raises:
        Unsupported: a value type this encoder leaves to the SDK.
    """
    out: dict[str, Any] = {}
    for name, value in entity.items():
        kind = type(value)
        if kind is str or kind is bool:
            out[name] = value
        elif kind is datetime:  # the common case first: a plain aware or naive datetime
            out[name] = _utc_text(value)
            out[name + "@odata.type"] = "Edm.DateTime"
        elif value is None:
            continue
        elif kind is int:
            _put_typed(out, name, value, EdmType.INT32)
        elif kind is float:
            _put_typed(out, name, value, EdmType.DOUBLE)
        elif isinstance(value, datetime):
            _put_typed(out, name, value, EdmType.DATETIME)
        elif isinstance(value, EntityProperty | tuple) and len(value) == 2:
            if value[0] is not None:
                _put_typed(out, name, value[0], EdmType(value[1]))
        else:
            raise Unsupported(name)
    return json.dumps(out, ensure_ascii=False, separators=(",", ":"))


_PLAIN_KEY = re.compile(r"[A-Za-z0-9_.~-]*")
"""Characters ``quote(..., safe="")`` leaves as they are."""


@functools.lru_cache(maxsize=1024)
def _quoted_partition(partition_key: str) -> str:
    # A transaction's rows share one partition key; ids of a write share a few dozen.
    return quote(partition_key.replace("'", "''"), safe="")


def _quoted_row(row_key: str) -> str:
    if _PLAIN_KEY.fullmatch(row_key):
        return row_key
    return quote(row_key.replace("'", "''"), safe="")


def _key_url(table_url: str, entity: Mapping[str, Any]) -> str:
    partition_key = _quoted_partition(str(entity["PartitionKey"]))
    row_key = _quoted_row(str(entity["RowKey"]))
    return f"{table_url}(PartitionKey='{partition_key}',RowKey='{row_key}')"


def _if_match(kind: str, options: Mapping[str, Any]) -> str | None:
    """The ``If-Match`` header the SDK sends (``_get_match_condition`` + ``prep_if_match``)."""
    if kind in ("create", "upsert"):
        return None
    etag = options.get("etag")
    condition = options.get("match_condition") or MatchConditions.Unconditionally
    if condition == MatchConditions.IfNotModified and etag:
        text = str(etag)
        if text == "*" or text.startswith(("W/", '"', "'")):
            return text
        return f'"{text}"'
    if condition == MatchConditions.Unconditionally and not etag:
        return "*"
    raise Unsupported("match condition")


def operation_part(
    index: int,
    kind: str,
    entity: Mapping[str, Any],
    options: Mapping[str, Any],
    *,
    table_url: str,
    version: str,
    date: str,
) -> str:
    """One ``application/http`` part of the changeset (CRLF line ends, as HTTP wants).

    Raises:
        Unsupported: an operation, option or value left to the SDK.
    """
    if set(options) - _KNOWN_OPTIONS:
        raise Unsupported("options")
    given = options.get("mode", UpdateMode.MERGE)
    mode = str(given.value if isinstance(given, UpdateMode) else given).lower()
    if kind == "create":
        method, url, body = "POST", table_url, encode_entity(entity)
    elif kind in ("upsert", "update"):
        if mode not in ("merge", "replace"):
            raise Unsupported("mode")
        method = "PUT" if mode == "replace" else "PATCH"
        url, body = _key_url(table_url, entity), encode_entity(entity)
    elif kind == "delete":
        method, url, body = "DELETE", _key_url(table_url, entity), None
    else:
        raise Unsupported(kind)
    accept = "application/json;odata=minimalmetadata" if kind == "create" else "application/json"
    lines = [
        "Content-Type: application/http",
        "Content-Transfer-Encoding: binary",
        f"Content-ID: {index}",
        "",
        f"{method} {url} HTTP/1.1",
    ]
    payload = b""
    if body is not None:
        payload = body.encode("utf-8", "surrogatepass")
        lines += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
    lines += [
        f"x-ms-version: {version}",
        "DataServiceVersion: 3.0",
        f"Accept: {accept}",
    ]
    match = _if_match(kind, options)
    if match is not None:
        lines.append(f"If-Match: {match}")
    lines += [f"x-ms-date: {date}", f"Date: {date}", "", body or ""]
    return "\r\n".join(lines)


def batch_body(
    operations: Sequence[tuple[str, Mapping[str, Any], Mapping[str, Any]]],
    *,
    table_url: str,
    version: str,
    batch_boundary: str,
    changeset_boundary: str,
    date: str,
) -> bytes:
    """The whole ``multipart/mixed`` body: one changeset holding every operation.

    Raises:
        Unsupported: an operation, option or value left to the SDK.
    """
    parts = [
        operation_part(i, kind, entity, options, table_url=table_url, version=version, date=date)
        for i, (kind, entity, options) in enumerate(operations)
    ]
    changeset = "".join(f"--{changeset_boundary}\r\n{part}\r\n" for part in parts)
    text = (
        f"--{batch_boundary}\r\n"
        f"Content-Type: multipart/mixed; boundary={changeset_boundary}\r\n\r\n"
        f"{changeset}--{changeset_boundary}--\r\n\r\n"
        f"--{batch_boundary}--\r\n"
    )
    return text.encode("utf-8", "surrogatepass")


# --- decoding ---------------------------------------------------------------------------------


def read_parts(content_type: str, body: str) -> list[tuple[int, dict[str, str]]] | None:
    """``(status, metadata)`` per part of a ``$batch`` answer, ``metadata`` holding the ETag
    as the SDK reports it (``{"etag": ...}``); ``None`` when the body is not a changeset answer.
    """
    match = _CHANGESET_BOUNDARY.search(body)
    if "multipart/mixed" not in content_type or match is None:
        return None
    delimiter = f"--{match.group(1)}"
    sections = body.split(delimiter)
    found: list[tuple[int, dict[str, str]]] = []
    for section in sections[1:]:
        if section.startswith("--"):
            break  # the closing delimiter
        status = _STATUS_LINE.search(section)
        if status is None:
            return None
        head = section[status.end() :].split("\r\n\r\n", 1)[0].split("\n\n", 1)[0]
        etag = _ETAG.search(head)
        found.append((int(status.group(1)), {"etag": etag.group(1).strip()} if etag else {}))
    return found


# --- sending ----------------------------------------------------------------------------------


def _base_url(client: TableClient) -> str | None:
    url = client.url
    if "?" in url or getattr(client, "_cosmos_endpoint", True):
        return None  # a SAS in the URL or a Cosmos DB endpoint: the SDK's own path
    return url.rstrip("/")


def submit(
    client: TableClient, operations: Sequence[tuple[str, Mapping[str, Any], Mapping[str, Any]]]
) -> list[Mapping[str, Any]]:
    """Submit one transaction; what ``client.submit_transaction`` returns (one metadata dict per
    operation), and raises what it raises.

    ``operations`` are ``(kind, entity, options)`` as the SDK takes them (``kind`` one of
    ``create``, ``upsert``, ``update``, ``delete``), all on one partition, at most 100.
    """
    sdk_form = [(kind, dict(entity), dict(options)) for kind, entity, options in operations]
    base = _base_url(client)
    if base is None or not operations:
        return client.submit_transaction(sdk_form)
    version = client.api_version
    batch_boundary = f"batch_{uuid.uuid4()}"
    try:
        body = batch_body(
            operations,
            table_url=f"{base}/{quote(client.table_name, safe='')}",
            version=version,
            batch_boundary=batch_boundary,
            changeset_boundary=f"changeset_{uuid.uuid4()}",
            date=formatdate(usegmt=True),
        )
    except Unsupported:
        return client.submit_transaction(sdk_form)
    request = HttpRequest(
        "POST",
        f"{base}/$batch",
        headers={
            "Content-Type": f"multipart/mixed; boundary={batch_boundary}",
            "x-ms-version": version,
            "DataServiceVersion": "3.0",
            "MaxDataServiceVersion": "3.0;NetFx",
            "Accept": "application/json",
        },
        content=body,
    )
    # The client's own pipeline, as TableClient._batch_send sends its batches (streamed, so
    # the pipeline does not try to decode the multipart answer as JSON).
    response = client._client.send_request(request, stream=True)
    response.read()
    if response.status_code != 202:
        # Refused as a whole (nothing applied): let the SDK send it and raise its own error.
        return client.submit_transaction(sdk_form)
    parts = read_parts(response.headers.get("Content-Type", ""), response.text())
    if parts is None:
        raise HttpResponseError(
            message="the $batch answer could not be read as a changeset answer",
            response=response,
        )
    if any(not 200 <= status < 300 for status, _ in parts):
        return client.submit_transaction(sdk_form)  # failed, nothing applied: the SDK's error
    if len(parts) != len(operations):
        raise HttpResponseError(
            message=f"the $batch answer has {len(parts)} parts for {len(operations)} operations",
            response=response,
        )
    return [metadata for _, metadata in parts]
