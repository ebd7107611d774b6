"""The Azure queue backend on Azurite: raw text, and lost leases reported, not raised."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from dmsync.host.storage_access import StorageAccess, connection_settings
from emulators.azurite import AzuriteInstance
from shared.errors import ConfigurationError

pytestmark = pytest.mark.integration


@pytest.fixture
def storage(azurite: AzuriteInstance) -> Iterator[StorageAccess]:
    executor = ThreadPoolExecutor(4)
    environ = {
        "AzureWebJobsStorage": azurite.connection_string,
        "OtherStorage": azurite.connection_string,
    }
    yield StorageAccess(environ, executor)
    executor.shutdown()


async def test_missing_queue_reads_as_empty_and_send_creates_it(
    storage: StorageAccess, unique_name: str
) -> None:
    queue = storage.queue("AzureWebJobsStorage", unique_name)
    assert await queue.receive(16, 30) == []
    assert await queue.approximate_count() == 0
    await queue.send("not even base64")
    [message] = await queue.receive(16, 30)
    assert (message.text, message.dequeue_count) == ("not even base64", 1)
    assert await queue.approximate_count() == 1  # counted while invisible


async def test_stale_receipts_and_gone_messages_are_reported_not_raised(
    storage: StorageAccess, unique_name: str
) -> None:
    """404 and PopReceiptMismatch mean 'not ours any more' (the extension ignores both)."""
    queue = storage.queue("AzureWebJobsStorage", unique_name)
    await queue.send("x")
    [first] = await queue.receive(1, 30)
    renewed = await queue.update_visibility(first.id, first.pop_receipt, 0)
    assert renewed is not None and renewed.pop_receipt != first.pop_receipt
    assert await queue.delete(first.id, first.pop_receipt) is False  # stale receipt
    assert await queue.update_visibility(first.id, first.pop_receipt, 0) is None
    [again] = await queue.receive(1, 30)
    assert again.dequeue_count == 2
    assert await queue.delete(again.id, again.pop_receipt) is True
    assert await queue.delete(again.id, again.pop_receipt) is False  # already gone
    assert await queue.update_visibility(again.id, again.pop_receipt, 0) is None


async def test_other_connection_names_resolve_like_azure_web_jobs_storage(
    storage: StorageAccess, unique_name: str
) -> None:
    """A binding's connection may name another app setting in the same forms."""
    await storage.queue("OtherStorage", unique_name).send("via other")
    [message] = await storage.queue("AzureWebJobsStorage", unique_name).receive(1, 30)
    assert message.text == "via other"
    with pytest.raises(ConfigurationError, match="MissingStorage is not set"):
        connection_settings("MissingStorage", {})
