"""The storage clients reach a real Azurite, and queue messages are base64 as the host expects."""

from __future__ import annotations

import base64

import pytest

from emulators.azurite import AzuriteInstance
from shared.storage import StorageConnection

pytestmark = pytest.mark.integration


def test_queue_messages_are_base64_on_the_wire(azurite: AzuriteInstance, unique_name: str) -> None:
    """A message sent by our client is base64 text when read raw, as the Functions host reads it."""
    from azure.storage.queue import QueueClient

    conn = StorageConnection.from_connection_string(azurite.connection_string)
    queue = conn.queue_client(unique_name)
    queue.create_queue()
    queue.send_message('{"hello": "wörld"}')
    raw = QueueClient.from_connection_string(azurite.connection_string, unique_name)
    [message] = list(raw.receive_messages(max_messages=1))
    assert base64.b64decode(message.content).decode() == '{"hello": "wörld"}'


def test_tables_round_trip(azurite: AzuriteInstance, unique_name: str) -> None:
    """The table client writes and point-reads an entity."""
    conn = StorageConnection.from_connection_string(azurite.connection_string)
    table = conn.table_service().create_table_if_not_exists(unique_name)
    table.upsert_entity({"PartitionKey": "p", "RowKey": "r", "value": 42})
    assert table.get_entity("p", "r")["value"] == 42
