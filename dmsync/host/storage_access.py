"""Binding connections → storage: queue backends per (connection, queue), and the host's table.

A binding's ``connection`` names an app setting: ``AzureWebJobsStorage`` (the default) or any
other name ``X`` given in the same forms, a connection string in ``X`` or the identity-based
``X__accountName`` / ``X__queueServiceUri`` / ``X__tableServiceUri`` / ``X__credential`` /
``X__clientId`` [reference §6]. Connections are resolved on first use, so an app whose timers
need no storage runs without it.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import Executor

from azure.data.tables import TableClient

from dmsync.host.function_index import HOST_STORAGE
from dmsync.host.queue_backend import AzureQueueBackend
from shared.errors import ConfigurationError
from shared.settings import StorageSettings, load
from shared.storage import StorageConnection

_SUFFIXES = (
    "",
    "__accountName",
    "__queueServiceUri",
    "__tableServiceUri",
    "__blobServiceUri",
    "__credential",
    "__clientId",
)


def connection_settings(name: str, environ: Mapping[str, str]) -> StorageSettings:
    """The storage settings of connection ``name``, read as ``AzureWebJobsStorage`` is.

    Raises:
        ConfigurationError: naming the connection's settings (never their values).
    """
    lowered = {key.lower(): value for key, value in environ.items()}
    mapped = {
        HOST_STORAGE + suffix: lowered[(name + suffix).lower()]
        for suffix in _SUFFIXES
        if (name + suffix).lower() in lowered
    }
    try:
        return load(StorageSettings, mapped)
    except ConfigurationError as error:
        if name == HOST_STORAGE:
            raise
        raise ConfigurationError(str(error).replace(HOST_STORAGE, name)) from None


class StorageAccess:
    """Hands out queue backends (one per connection and queue) and the host storage's tables."""

    def __init__(self, environ: Mapping[str, str], executor: Executor) -> None:
        self._environ = environ
        self._executor = executor
        self._connections: dict[str, StorageConnection] = {}
        self._queues: dict[tuple[str, str], AzureQueueBackend] = {}

    def connection(self, name: str) -> StorageConnection:
        """The resolved connection ``name`` (cached)."""
        key = name.lower()
        if key not in self._connections:
            self._connections[key] = StorageConnection.from_settings(
                connection_settings(name, self._environ)
            )
        return self._connections[key]

    def queue(self, connection_name: str, queue_name: str) -> AzureQueueBackend:
        """The backend for ``queue_name`` on ``connection_name`` (cached)."""
        key = (connection_name.lower(), queue_name)
        if key not in self._queues:
            client = self.connection(connection_name).raw_queue_client(queue_name)
            self._queues[key] = AzureQueueBackend(client, self._executor)
        return self._queues[key]

    def host_table(self, table_name: str) -> TableClient:
        """A client for a table in ``AzureWebJobsStorage``."""
        return self.connection(HOST_STORAGE).table_service().get_table_client(table_name)
