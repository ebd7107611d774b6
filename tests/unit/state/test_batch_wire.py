"""The ``$batch`` text: entity encoding as the SDK types values, operation parts, answers."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from azure.core import MatchConditions
from azure.data.tables import EdmType, EntityProperty, UpdateMode
from azure.data.tables._entity import TableEntity

from shared.state.batch_wire import (
    Unsupported,
    batch_body,
    encode_entity,
    operation_part,
    read_parts,
)

TABLE_URL = "http://127.0.0.1:10002/devstoreaccount1/dmsyncmappings"
ENTITY = {"PartitionKey": "i!contact!07", "RowKey": "a'b~c", "marketo_id": "42"}


def test_values_are_typed_as_the_sdk_types_them() -> None:
    """Strings, booleans and 32-bit ints plain; doubles, Int64 and datetimes annotated;
    None left out; aware datetimes in UTC with microseconds."""
    body = json.loads(
        encode_entity(
            {
                "PartitionKey": "p",
                "RowKey": "r",
                "text": "zoë",
                "flag": False,
                "small": 2**31 - 1,
                "ratio": 0.5,
                "big": EntityProperty(2**40, EdmType.INT64),
                "tuple_big": (7, "Edm.Int64"),
                "when": datetime(2026, 5, 1, 14, 0, 0, 120, tzinfo=timezone(timedelta(hours=2))),
                "gone": None,
            }
        )
    )
    assert body == {
        "PartitionKey": "p",
        "RowKey": "r",
        "text": "zoë",
        "flag": False,
        "small": 2**31 - 1,
        "ratio": 0.5,
        "ratio@odata.type": "Edm.Double",
        "big": str(2**40),
        "big@odata.type": "Edm.Int64",
        "tuple_big": "7",
        "tuple_big@odata.type": "Edm.Int64",
        "when": "2026-05-01T12:00:00.000120Z",
        "when@odata.type": "Edm.DateTime",
    }


def test_a_datetime_read_from_a_table_keeps_its_service_text() -> None:
    """100 ns precision survives a read-modify-write, as with the SDK."""

    class ServiceDatetime(datetime):
        tables_service_value = "2026-05-01T12:00:00.1234567Z"

    value = ServiceDatetime(2026, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
    assert json.loads(encode_entity({"at": value}))["at"] == "2026-05-01T12:00:00.1234567Z"


@pytest.mark.parametrize(
    "value",
    [2**31, b"bytes", float("nan"), EntityProperty("x", EdmType.GUID), MatchConditions.IfPresent],
)
def test_values_it_does_not_encode_are_left_to_the_sdk(value: object) -> None:
    """Out-of-range ints (the SDK refuses them too), bytes, NaN, GUIDs, enums."""
    with pytest.raises(Unsupported):
        encode_entity({"x": value})


def _lines(part: str) -> list[str]:
    assert "\n" not in part.replace("\r\n", "")  # CRLF throughout
    return part.split("\r\n")


def test_parts_for_each_kind_of_operation() -> None:
    """Methods, key URLs (quotes doubled, then percent-encoded), Accept, If-Match, lengths."""
    common = {"table_url": TABLE_URL, "version": "2019-02-02", "date": "D"}
    create = _lines(operation_part(0, "create", ENTITY, {}, **common))
    assert create[:5] == [
        "Content-Type: application/http",
        "Content-Transfer-Encoding: binary",
        "Content-ID: 0",
        "",
        f"POST {TABLE_URL} HTTP/1.1",
    ]
    body = create[-1]
    assert f"Content-Length: {len(body.encode())}" in create
    assert "Accept: application/json;odata=minimalmetadata" in create
    assert not any(line.startswith("If-Match") for line in create)

    key_url = f"{TABLE_URL}(PartitionKey='i%21contact%2107',RowKey='a%27%27b~c')"
    upsert = _lines(operation_part(1, "upsert", ENTITY, {"mode": UpdateMode.REPLACE}, **common))
    assert f"PUT {key_url} HTTP/1.1" in upsert
    assert not any(line.startswith("If-Match") for line in upsert)
    merge = _lines(operation_part(2, "upsert", ENTITY, {"mode": "merge"}, **common))
    assert f"PATCH {key_url} HTTP/1.1" in merge

    update = _lines(operation_part(3, "update", ENTITY, {"mode": UpdateMode.MERGE}, **common))
    assert f"PATCH {key_url} HTTP/1.1" in update
    assert "If-Match: *" in update
    conditional = _lines(
        operation_part(
            4,
            "update",
            ENTITY,
            {
                "mode": UpdateMode.REPLACE,
                "etag": "W/\"datetime'2026'\"",
                "match_condition": MatchConditions.IfNotModified,
            },
            **common,
        )
    )
    assert "If-Match: W/\"datetime'2026'\"" in conditional

    delete = _lines(operation_part(5, "delete", ENTITY, {}, **common))
    assert f"DELETE {key_url} HTTP/1.1" in delete
    assert "If-Match: *" in delete
    assert not any(line.startswith("Content-Length") for line in delete)


@pytest.mark.parametrize(
    ("kind", "options"),
    [
        ("merge", {}),
        ("upsert", {"mode": "insert"}),
        ("update", {"timeout": 5}),
        ("update", {"match_condition": MatchConditions.IfModified, "etag": "x"}),
    ],
)
def test_operations_it_does_not_write_are_left_to_the_sdk(
    kind: str, options: dict[str, object]
) -> None:
    """Unknown kinds, modes, options and match conditions."""
    with pytest.raises(Unsupported):
        operation_part(0, kind, ENTITY, options, table_url=TABLE_URL, version="v", date="D")


def test_the_body_is_one_changeset_in_one_batch() -> None:
    """Boundaries open every part and close changeset and batch, in that order."""
    body = batch_body(
        [("upsert", ENTITY, {"mode": UpdateMode.REPLACE}), ("delete", ENTITY, {})],
        table_url=TABLE_URL,
        version="2019-02-02",
        batch_boundary="batch_1",
        changeset_boundary="changeset_2",
        date="D",
    ).decode()
    assert body.startswith(
        "--batch_1\r\nContent-Type: multipart/mixed; boundary=changeset_2\r\n\r\n--changeset_2\r\n"
    )
    assert body.count("--changeset_2\r\n") == 2
    assert body.endswith("--changeset_2--\r\n\r\n--batch_1--\r\n")


SUCCESS = (
    "--batchresponse_1\r\n"
    "Content-Type: multipart/mixed; boundary=changesetresponse_2\r\n\r\n"
    "--changesetresponse_2\r\n"
    "Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
    "HTTP/1.1 204 No Content\r\nX-Content-Type-Options: nosniff\r\nDataServiceVersion: 3.0;\r\n"
    "ETag: W/\"datetime'2026-11-25T23%3A25%3A24.6758133Z'\"\r\n\r\n\r\n"
    "--changesetresponse_2\r\n"
    "Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
    "HTTP/1.1 201 Created\r\nLocation: http://x/t(PartitionKey='p',RowKey='r')\r\n"
    "Etag: W/\"datetime'2026-11-25T23%3A25%3A24.6758145Z'\"\r\n\r\n\r\n"
    "--changesetresponse_2\r\n"
    "Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
    "HTTP/1.1 204 No Content\r\nDataServiceVersion: 1.0;\r\n\r\n\r\n"
    "--changesetresponse_2--\r\n"
    "--batchresponse_1--\r\n"
)
FAILURE = (
    "--batchresponse_1\r\n"
    "Content-Type: multipart/mixed; boundary=changesetresponse_2\r\n\r\n"
    "--changesetresponse_2\r\n"
    "Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
    "HTTP/1.1 404 Not Found\r\nContent-ID: 2\r\n"
    "Content-Type: application/json;odata=minimalmetadata;charset=utf-8\r\n\r\n"
    '{"odata.error":{"code":"ResourceNotFound","message":{"lang":"en-US",'
    '"value":"1:The specified resource does not exist."}}}\r\n'
    "--changesetresponse_2--\r\n"
    "--batchresponse_1--\r\n"
)


def test_answers_are_read_part_by_part() -> None:
    """Status and ETag (header name in any case) per part; a failure is its one part."""
    content_type = "multipart/mixed; boundary=batchresponse_1"
    assert read_parts(content_type, SUCCESS) == [
        (204, {"etag": "W/\"datetime'2026-11-25T23%3A25%3A24.6758133Z'\""}),
        (201, {"etag": "W/\"datetime'2026-11-25T23%3A25%3A24.6758145Z'\""}),
        (204, {}),
    ]
    assert read_parts(content_type, FAILURE) == [(404, {})]
    assert read_parts(content_type, SUCCESS.replace("\r\n", "\n")) is not None
    assert read_parts("application/json", SUCCESS) is None
    assert read_parts(content_type, '{"odata.error": {}}') is None


def test_an_entity_as_the_sdk_returns_it_encodes_like_a_dict() -> None:
    """``TableEntity`` rows (read, changed, written back) encode their values."""
    row = TableEntity({"PartitionKey": "p", "RowKey": "r", "n": 3})
    assert json.loads(encode_entity(row)) == {"PartitionKey": "p", "RowKey": "r", "n": 3}
