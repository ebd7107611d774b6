"""The Dataverse client: one object holding the connection pool, token cache, cap and counters.

Usage::

    async with DynamicsClient(load(DynamicsSettings)) as dynamics:
        contacts = TableRef.standard("contact", "contacts")
        page = await dynamics.read_page(contacts, ["firstname", "emailaddress1"])
        ...
        results = await dynamics.execute_batch(
            [BatchOperation.upsert(contacts, {"emailaddress1": e}, attrs) for e, attrs in rows]
        )

Each method is a thin call into the module that owns the protocol (``reads``, ``writes``,
``batch``, ``metadata``, ``identity``); this class only wires the parts together and owns their
lifetime.
"""

from __future__ import annotations

import random
import ssl
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any

import httpx
from azure.core.credentials import TokenCredential

from shared.clock import SYSTEM_CLOCK, Clock
from shared.dynamics import batch, identity, metadata, reads, writes
from shared.dynamics.auth import (
    DEFAULT_REFRESH_MARGIN,
    CredentialFactory,
    EntraTokenProvider,
    credential_factory,
)
from shared.dynamics.batch import BatchItem, BatchItemResult
from shared.dynamics.counters import CallCounters
from shared.dynamics.limiter import ConcurrencyLimiter, RequestLimiter
from shared.dynamics.models import (
    ChangedRecord,
    ChangePage,
    ChoiceColumn,
    OrganizationDetail,
    OrganizationInfo,
    RecordCount,
    TableDefinition,
    TableRef,
    WhoAmI,
    WriteResult,
)
from shared.dynamics.odata import Filter
from shared.dynamics.transport import (
    API_VERSION,
    DEFAULT_RETRY_POLICY,
    DEFAULT_TIMEOUT,
    DataverseTransport,
)
from shared.dynamics.writes import RecordKey
from shared.http_pool import pool_limits
from shared.retry import RetryPolicy
from shared.settings import DynamicsSettings


def _ssl_verify(verify: str | bool | ssl.SSLContext) -> bool | ssl.SSLContext:
    """httpx's ``verify``: a CA bundle path becomes an SSL context trusting that bundle."""
    if isinstance(verify, str):
        return ssl.create_default_context(cafile=verify)
    return verify


class DynamicsClient:
    """An async Dataverse Web API client (see the module docstring).

    Args:
        settings: the environment URL, tenant, client id/secret and concurrency cap.
        credential: a credential or credential factory (default: built from ``settings``).
        transport: an httpx transport (tests pass ``httpx.MockTransport``).
        verify: TLS verification: True, False, an SSL context, or a CA bundle path (the local
            emulator's CA; it is also trusted for the token endpoint).
        clock: the time source for waits and token expiry.
        retry_policy: retry bounds.
        timeout: httpx timeouts (explicit by default: 10 s connect, 120 s read).
        max_concurrency: requests in flight at once (default ``settings.max_concurrency``).
        api_version: the Web API version in the URL.
        rng: the jitter source (inject a seeded one in tests).
        refresh_margin: renew a token this many seconds before it expires.
    """

    def __init__(
        self,
        settings: DynamicsSettings,
        *,
        credential: TokenCredential | CredentialFactory | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        verify: str | bool | ssl.SSLContext = True,
        clock: Clock = SYSTEM_CLOCK,
        retry_policy: RetryPolicy = DEFAULT_RETRY_POLICY,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        max_concurrency: int | None = None,
        limiter: RequestLimiter | None = None,
        api_version: str = API_VERSION,
        rng: random.Random | None = None,
        refresh_margin: float = DEFAULT_REFRESH_MARGIN,
    ) -> None:
        cap = max_concurrency or settings.max_concurrency
        ca_bundle = verify if isinstance(verify, str) else None
        self.counters = CallCounters()
        self.limiter: RequestLimiter = limiter or ConcurrencyLimiter(cap)
        self.tokens = EntraTokenProvider(
            credential or credential_factory(settings, ca_bundle=ca_bundle),
            settings.scope,
            clock=clock,
            refresh_margin=refresh_margin,
            identity=f"client id {settings.client_id} in tenant {settings.tenant_id}",
        )
        self._http = httpx.AsyncClient(
            transport=transport,
            verify=_ssl_verify(verify),
            timeout=timeout,
            limits=pool_limits(cap),
            follow_redirects=False,
        )
        self.transport = DataverseTransport(
            environment_url=settings.url,
            http=self._http,
            tokens=self.tokens,
            clock=clock,
            policy=retry_policy,
            limiter=self.limiter,
            counters=self.counters,
            api_version=api_version,
            rng=rng,
        )

    def __repr__(self) -> str:
        return f"DynamicsClient(api_root={self.transport.api_root!r})"

    async def __aenter__(self) -> DynamicsClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool and the credential."""
        await self._http.aclose()
        self.tokens.close()

    # --- reads --------------------------------------------------------------------------------

    async def read_page(
        self,
        table: TableRef,
        columns: Sequence[str],
        *,
        next_link: str | None = None,
        delta_link: str | None = None,
        track_changes: bool = True,
        page_size: int = reads.MAX_PAGE_SIZE,
        where: Filter | None = None,
        include_lookup_names: bool = False,
        formatted_values: bool = False,
    ) -> ChangePage:
        """One page of a full read, a continued read or a delta (see :func:`reads.read_page`)."""
        return await reads.read_page(
            self.transport,
            table,
            columns,
            next_link=next_link,
            delta_link=delta_link,
            track_changes=track_changes,
            page_size=page_size,
            where=where,
            include_lookup_names=include_lookup_names,
            formatted_values=formatted_values,
        )

    def iter_pages(
        self,
        table: TableRef,
        columns: Sequence[str],
        *,
        delta_link: str | None = None,
        track_changes: bool = True,
        page_size: int = reads.MAX_PAGE_SIZE,
        where: Filter | None = None,
        include_lookup_names: bool = False,
        max_pages: int | None = None,
    ) -> AsyncIterator[ChangePage]:
        """Every page of a full read or a delta (see :func:`reads.iter_pages`)."""
        return reads.iter_pages(
            self.transport,
            table,
            columns,
            delta_link=delta_link,
            track_changes=track_changes,
            page_size=page_size,
            where=where,
            include_lookup_names=include_lookup_names,
            max_pages=max_pages,
        )

    async def read_records(
        self,
        table: TableRef,
        ids: Iterable[str],
        columns: Sequence[str],
        *,
        include_lookup_names: bool = True,
    ) -> list[ChangedRecord]:
        """The current rows with these ids, with lookup annotations (:func:`reads.read_records`)."""
        return await reads.read_records(
            self.transport, table, ids, columns, include_lookup_names=include_lookup_names
        )

    async def count(self, table: TableRef) -> RecordCount:
        """How many rows the table has (exact up to 5,000; see :func:`reads.count`)."""
        return await reads.count(self.transport, table)

    # --- writes -------------------------------------------------------------------------------

    async def create(
        self,
        table: TableRef,
        attributes: Mapping[str, Any],
        *,
        return_representation: bool = False,
    ) -> WriteResult:
        """Create a row and return its GUID."""
        return await writes.create(
            self.transport, table, attributes, return_representation=return_representation
        )

    async def update(
        self, table: TableRef, record_id: str | uuid.UUID, attributes: Mapping[str, Any]
    ) -> WriteResult:
        """Update an existing row (``If-Match: *``)."""
        return await writes.update(self.transport, table, record_id, attributes)

    async def upsert(
        self, table: TableRef, key: RecordKey, attributes: Mapping[str, Any]
    ) -> WriteResult:
        """Create or update by GUID or alternate key; says which, and gives the GUID."""
        return await writes.upsert(self.transport, table, key, attributes)

    async def delete(
        self, table: TableRef, record_id: str | uuid.UUID, *, missing_ok: bool = False
    ) -> bool:
        """Delete a row; False if it was already gone and ``missing_ok``."""
        return await writes.delete(self.transport, table, record_id, missing_ok=missing_ok)

    async def execute_batch(
        self,
        items: Sequence[BatchItem],
        *,
        continue_on_error: bool = True,
        max_operations: int = batch.MAX_BATCH_OPERATIONS,
    ) -> list[BatchItemResult]:
        """Run operations through ``$batch``, split at ``max_operations``; one result each."""
        return await batch.execute_batch(
            self.transport,
            items,
            continue_on_error=continue_on_error,
            max_operations=max_operations,
        )

    # --- metadata and identity ----------------------------------------------------------------

    async def choice_columns(self, logical_name: str) -> dict[str, ChoiceColumn]:
        """The choice columns of a table with their options (value → label)."""
        return await metadata.choice_columns(self.transport, logical_name)

    async def table_definition(self, logical_name: str) -> TableDefinition:
        """Entity set, primary key, change tracking flag and columns of a table."""
        return await metadata.table_definition(self.transport, logical_name)

    async def table_definitions(self, logical_names: Sequence[str]) -> dict[str, TableDefinition]:
        """Several tables' definitions in one request (missing tables are absent)."""
        return await metadata.table_definitions(self.transport, logical_names)

    async def whoami(self) -> WhoAmI:
        """``WhoAmI``: user, business unit and organization ids."""
        return await identity.whoami(self.transport)

    async def organization(self) -> OrganizationInfo:
        """The ``organizations`` row: id, name, change-tracking retention, creation time."""
        return await identity.organization(self.transport)

    async def current_organization(self) -> OrganizationDetail:
        """``RetrieveCurrentOrganization``: environment id, unique name, tenant, version."""
        return await identity.current_organization(self.transport)
