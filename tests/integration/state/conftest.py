"""A state store per test on the session's Azurite: a unique table prefix, a manual clock, and
a transport that counts the HTTP requests the store makes."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.pipeline.transport import RequestsTransport
from azure.data.tables import TableServiceClient

from emulators.azurite import AzuriteInstance
from shared.clock import ManualClock
from shared.state.store import StateStore
from shared.storage import StorageConnection


class RequestLog:
    """Every request sent through a :class:`CountingTransport`, as ``(method, path)``."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []
        self.clients_made = 0
        self.threads: set[int] = set()

    def clear(self) -> None:
        """Forget what was counted so far."""
        self.requests.clear()

    def count(self, method: str | None = None, path_contains: str = "") -> int:
        """Requests with ``method`` (any if ``None``) whose path contains ``path_contains``."""
        return sum(
            1
            for m, path in self.requests
            if (method is None or m == method) and path_contains in path
        )


class CountingTransport(RequestsTransport):
    """The SDK's own requests transport, counting what passes through it."""

    def __init__(self, log: RequestLog, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._log = log

    def send(self, request: Any, **kwargs: Any) -> Any:
        path = request.url.split("?", 1)[0]
        self._log.requests.append((request.method, path))
        return super().send(request, **kwargs)


def counting_factory(
    connection: StorageConnection, log: RequestLog
) -> Callable[[], TableServiceClient]:
    """A service factory whose clients count requests into ``log``."""
    assert connection.account_key is not None

    def make() -> TableServiceClient:
        log.clients_made += 1
        log.threads.add(threading.get_ident())
        return TableServiceClient(
            endpoint=connection.table_url,
            credential=AzureNamedKeyCredential(connection.account_name, connection.account_key),
            transport=CountingTransport(log),
        )

    return make


@pytest.fixture
def connection(azurite: AzuriteInstance) -> StorageConnection:
    """The session Azurite's storage connection."""
    return StorageConnection.from_connection_string(azurite.connection_string)


@pytest.fixture
def clock() -> ManualClock:
    """The time every store in the test shares."""
    return ManualClock()


@pytest.fixture
def request_log() -> RequestLog:
    """Requests made by the ``store`` fixture's clients."""
    return RequestLog()


@pytest.fixture
def make_store(
    connection: StorageConnection, unique_name: str, clock: ManualClock, request_log: RequestLog
) -> Iterator[Callable[..., StateStore]]:
    """Makes stores on this test's tables (same prefix, own clients); drops the tables after."""
    made: list[StateStore] = []

    def make(**options: Any) -> StateStore:
        options.setdefault("table_prefix", unique_name)
        options.setdefault("clock", clock)
        store = StateStore(counting_factory(connection, request_log), **options)
        made.append(store)
        return store

    yield make
    if made:
        made[0].drop_tables()


@pytest.fixture
def store(make_store: Callable[..., StateStore]) -> StateStore:
    """A store on this test's tables."""
    return make_store()
