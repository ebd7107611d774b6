"""``$batch`` as text against Azurite: the same rows as the SDK writes, the same errors."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from azure.core import MatchConditions
from azure.data.tables import EdmType, EntityProperty, TableClient, TableTransactionError
from azure.data.tables import UpdateMode as Mode

from emulators.azurite import AzuriteInstance
from shared.state import batch_wire
from shared.state.mappings import IdMapping
from shared.state.store import StateStore
from shared.storage import StorageConnection
from tests.integration.state.conftest import RequestLog, counting_factory

pytestmark = pytest.mark.integration

ROWS: list[dict[str, Any]] = [
    {
        "PartitionKey": "i!contact!07",
        "RowKey": "a'b",
        "text": "Zoë-Łucja 山田",
        "flag": True,
        "schema": 1,
        "ratio": 0.25,
        "big": EntityProperty(2**40, EdmType.INT64),
        "at": datetime(2026, 5, 1, 12, 0, 0, 123456, tzinfo=UTC),
        "none": None,
    },
    {"PartitionKey": "i!contact!07", "RowKey": "c~d.0e", "text": "x" * 2000},
]


@pytest.fixture
def tables(
    azurite: AzuriteInstance, unique_name: str, request_log: RequestLog
) -> Iterator[tuple[TableClient, TableClient]]:
    """Two empty tables: one written by the SDK, one by :mod:`batch_wire` (counted)."""
    connection = StorageConnection.from_connection_string(azurite.connection_string)
    service = counting_factory(connection, request_log)()
    by_sdk = service.create_table(f"{unique_name}sdk")
    by_wire = service.create_table(f"{unique_name}wire")
    try:
        yield by_sdk, by_wire
    finally:
        service.delete_table(by_sdk.table_name)
        service.delete_table(by_wire.table_name)


def _stored(client: TableClient) -> list[dict[str, Any]]:
    rows = []
    for entity in client.list_entities():
        row = dict(entity)
        row["at"] = row["at"].isoformat() if "at" in row else None
        row["big"] = (row["big"].value, row["big"].edm_type) if "big" in row else None
        rows.append(row)
    return sorted(rows, key=lambda r: r["RowKey"])


def test_rows_and_etags_are_what_the_sdk_writes(
    tables: tuple[TableClient, TableClient], request_log: RequestLog
) -> None:
    """Create, upsert, merge: the stored rows match row for row; one request per
    transaction; the ETags returned work for a conditional update."""
    by_sdk, by_wire = tables
    operations = [("create", ROWS[0], {}), ("upsert", ROWS[1], {"mode": Mode.REPLACE})]
    by_sdk.submit_transaction([(k, dict(e), dict(o)) for k, e, o in operations])
    request_log.clear()
    metadata = batch_wire.submit(by_wire, operations)
    assert len(request_log.requests) == 1
    assert _stored(by_wire) == _stored(by_sdk)
    assert len(metadata) == 2
    assert metadata[0]["etag"] == by_wire.get_entity("i!contact!07", "a'b").metadata["etag"]

    update = {"PartitionKey": "i!contact!07", "RowKey": "a'b", "flag": False}
    conditional = {
        "mode": Mode.MERGE,
        "etag": metadata[0]["etag"],
        "match_condition": MatchConditions.IfNotModified,
    }
    batch_wire.submit(by_wire, [("update", update, conditional)])
    assert by_wire.get_entity("i!contact!07", "a'b")["flag"] is False


def test_a_refused_transaction_raises_the_sdks_error_and_applies_nothing(
    tables: tuple[TableClient, TableClient], request_log: RequestLog
) -> None:
    """A stale ETag (412) and a missing row (404): ``TableTransactionError`` naming the failed
    operation, as ``submit_transaction`` raises it (it sent the transaction once more)."""
    _, by_wire = tables
    batch_wire.submit(by_wire, [("upsert", ROWS[0], {"mode": Mode.REPLACE})])
    stale = {
        "mode": Mode.REPLACE,
        "etag": "W/\"datetime'2020-01-01T00%3A00%3A00.0000000Z'\"",
        "match_condition": MatchConditions.IfNotModified,
    }
    request_log.clear()
    with pytest.raises(TableTransactionError) as refused:
        batch_wire.submit(
            by_wire,
            [
                ("upsert", ROWS[1], {"mode": Mode.REPLACE}),
                ("update", {**ROWS[0], "flag": False}, stale),
            ],
        )
    assert refused.value.status_code == 412
    assert refused.value.index == 1  # type: ignore[attr-defined]
    assert len(request_log.requests) == 2  # ours, then the SDK's
    assert [r["RowKey"] for r in by_wire.list_entities()] == ["a'b"]

    with pytest.raises(TableTransactionError) as missing:
        batch_wire.submit(
            by_wire, [("delete", {"PartitionKey": "i!contact!07", "RowKey": "x"}, {})]
        )
    assert missing.value.status_code == 404
    assert missing.value.index == 0  # type: ignore[attr-defined]


def test_the_store_writes_through_it(
    make_store: Any, request_log: RequestLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Mapping writes go as text, not through ``submit_transaction``."""
    store: StateStore = make_store()
    store.ensure_tables()
    store.mappings.get("warm-up", "contact", "x")

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the SDK's submit_transaction was used")

    monkeypatch.setattr(TableClient, "submit_transaction", refuse)
    request_log.clear()
    store.mappings.put_many([IdMapping("i", "contact", "d-1", "lead", "1")])
    assert request_log.count("POST", "$batch") == 2
    assert store.mappings.get("i", "contact", "d-1") is not None
