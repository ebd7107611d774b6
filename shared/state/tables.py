"""The tables the state store uses: their names, their clients, and what their errors mean.

Thread safety: the azure-core requests transport behind a table client is not documented as
thread-safe, so :class:`TableAccess` keeps **one service client (and its table clients) per
thread** in a ``threading.local``. Async callers run store calls through
``asyncio.to_thread``; each worker thread of that pool then gets its own client and connection
pool. The only state shared between threads is the set of tables already created, guarded by a
lock.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceModifiedError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.data.tables import TableClient, TableServiceClient, UpdateMode

from shared.errors import (
    ApiRequestError,
    AuthenticationError,
    ConcurrencyConflict,
    ConfigurationError,
    DmsyncError,
    ThrottledError,
    TransientServiceError,
)

DEFAULT_PREFIX = "dmsync"

_TABLE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]{2,62}$")
"""Valid table names (reference §7: letters and digits, 3-63, starting with a letter)."""


class TableKind(StrEnum):
    """Each table the store owns; the value is the name's suffix after the prefix."""

    WATERMARKS = "Watermarks"
    LEASES = "Leases"
    MAPPINGS = "Mappings"
    MAPPINGS_BY_MARKETO = "MappingsByMarketo"
    """The first layout's index by Marketo id (read for migration and clean-up only)."""
    MARKETO_INDEX = "MarketoIndex"
    SYNC_ERRORS = "SyncErrors"
    INSTANCES = "Instances"
    CONFIG = "Config"
    BUDGETS = "Budgets"


@dataclass(frozen=True)
class TableNames:
    """Table names under one prefix (tests use a unique prefix to isolate themselves)."""

    prefix: str = DEFAULT_PREFIX

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", self.prefix):
            raise ConfigurationError(
                f"table prefix {self.prefix!r} is invalid: it must start with a letter and "
                "contain only letters and digits"
            )
        longest = max(len(kind.value) for kind in TableKind)
        if len(self.prefix) + longest > 63:
            raise ConfigurationError(
                f"table prefix {self.prefix!r} is too long: at most {63 - longest} characters"
            )
        assert all(_TABLE_NAME.match(self.name(kind)) for kind in TableKind)

    def name(self, kind: TableKind) -> str:
        """The table name for ``kind``."""
        return self.prefix + kind.value

    def all(self) -> list[str]:
        """Every table name, in :class:`TableKind` order."""
        return [self.name(kind) for kind in TableKind]


ServiceFactory = Callable[[], TableServiceClient]
"""Makes a new table service client (default: ``StorageConnection.table_service``)."""


class TableAccess:
    """Per-thread table clients; each table is created once per process, on first use."""

    def __init__(self, service_factory: ServiceFactory, names: TableNames) -> None:
        self.names = names
        self._service_factory = service_factory
        self._local = threading.local()
        self._created: set[TableKind] = set()
        self._created_lock = threading.Lock()

    def _service(self) -> TableServiceClient:
        service: TableServiceClient | None = getattr(self._local, "service", None)
        if service is None:
            service = self._service_factory()
            self._local.service = service
            self._local.clients = {}
        return service

    def client(self, kind: TableKind) -> TableClient:
        """This thread's client for ``kind``'s table, creating the table if this is first use."""
        service = self._service()
        clients: dict[TableKind, TableClient] = self._local.clients
        client = clients.get(kind)
        if client is None:
            client = service.get_table_client(self.names.name(kind))
            clients[kind] = client
        if kind not in self._created:
            with self._created_lock:
                if kind not in self._created:
                    with storage_errors(f"creating table {self.names.name(kind)}"):
                        service.create_table_if_not_exists(self.names.name(kind))
                    self._created.add(kind)
        return client

    def ensure_tables(self) -> None:
        """Create every table now (idempotent)."""
        for kind in TableKind:
            self.client(kind)

    def drop_tables(self) -> None:
        """Delete every table of this prefix (tests and tear-down; data is gone)."""
        service = self._service()
        for kind in TableKind:
            with storage_errors(f"deleting table {self.names.name(kind)}"):
                service.delete_table(self.names.name(kind))
        with self._created_lock:
            self._created.clear()


def translate_storage_error(exc: Exception, action: str) -> DmsyncError:
    """Our taxonomy's error for an azure-core error raised while doing ``action``.

    The message names the action and the service's error code, never a URL (which could carry
    a SAS token) or a key.
    """
    if isinstance(exc, ResourceModifiedError) or (
        isinstance(exc, HttpResponseError) and exc.status_code == 412
    ):
        return ConcurrencyConflict(
            f"{action}: the row was changed by another writer", system="storage", status=412
        )
    if isinstance(exc, ClientAuthenticationError):
        return AuthenticationError(
            f"{action}: table storage rejected the credentials", system="storage", status=403
        )
    if isinstance(exc, (ServiceRequestError, ServiceResponseError)):
        return TransientServiceError(f"{action}: table storage unreachable", system="storage")
    if isinstance(exc, HttpResponseError):
        status = exc.status_code
        code = getattr(exc, "error_code", None)
        code_text = str(code) if code else None
        # 503 ServerBusy is how the table service throttles (429 from some proxies).
        if status in (429, 503):
            return ThrottledError(
                f"{action}: table storage is busy", system="storage", code=code_text, status=status
            )
        if status is None or status >= 500 or status == 408:
            return TransientServiceError(
                f"{action}: table storage failed", system="storage", code=code_text, status=status
            )
        return ApiRequestError(
            f"{action}: table storage refused the request",
            system="storage",
            code=code_text,
            status=status,
        )
    return TransientServiceError(f"{action}: {type(exc).__name__}", system="storage")


@contextmanager
def storage_errors(action: str, *, expected: tuple[type[Exception], ...] = ()) -> Iterator[None]:
    """Re-raise azure-core errors inside the block as our taxonomy (see
    :func:`translate_storage_error`), except the ``expected`` ones, which the caller handles
    (e.g. ``ResourceNotFoundError`` on a point read)."""
    try:
        yield
    except expected:
        raise
    except (HttpResponseError, ServiceRequestError, ServiceResponseError) as exc:
        raise translate_storage_error(exc, action) from exc


def replace_if_unchanged(
    client: TableClient, entity: Mapping[str, Any], etag: str | None, action: str
) -> str | None:
    """Replace a row only if it still has ``etag`` (optimistic concurrency); its new ETag.

    Raises:
        ConcurrencyConflict: the row was changed or deleted since it was read.
    """
    try:
        with storage_errors(action, expected=(ResourceNotFoundError,)):
            metadata = client.update_entity(
                entity,
                mode=UpdateMode.REPLACE,
                etag=etag,
                match_condition=MatchConditions.IfNotModified,
            )
    except ResourceNotFoundError:
        raise ConcurrencyConflict(
            f"{action}: the row was deleted by another writer", system="storage", status=404
        ) from None
    new_etag = metadata.get("etag")
    return None if new_etag is None else str(new_etag)
