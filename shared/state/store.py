"""The state store facade: one object that owns the table clients and composes the parts.

>>> store = StateStore.from_connection(StorageConnection.from_settings(load(StorageSettings)))
>>> lease = store.leases.acquire(stream, owner="worker-1", duration=timedelta(minutes=5))
>>> mark = store.watermarks.start_run(stream)
>>> known = store.mappings.get_many(stream.instance_id, stream.entity, ids)

Thread safety: every part gets its table clients from one :class:`TableAccess`, which keeps one
client per thread (see :mod:`shared.state.tables`); the parts themselves hold no mutable state
but a once-only layout check guarded by a lock. So one ``StateStore`` may be shared by threads,
and async code calls it through ``asyncio.to_thread``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from shared.clock import SYSTEM_CLOCK, Clock
from shared.settings import StorageSettings, SyncSettings, load
from shared.state.backfills import BackfillStore
from shared.state.budget_store import BudgetStore
from shared.state.instance_store import InstanceStore
from shared.state.instances import (
    CopyRefusedError,
    Instance,
    MarketoInstance,
    build_copy,
    decide_copy,
)
from shared.state.lease_store import LeaseStore
from shared.state.mapping_store import MappingStore
from shared.state.mappings import DEFAULT_BUCKETS, DEFAULT_INDEXED_TYPES, MappingLayout
from shared.state.odata import MAX_COMPARISONS
from shared.state.status import InstanceReport, build_report
from shared.state.sync_error_store import DEFAULT_RETENTION_DAYS, SyncErrorStore
from shared.state.sync_errors import ErrorRetryPolicy
from shared.state.tables import DEFAULT_PREFIX, ServiceFactory, TableAccess, TableNames
from shared.state.watermark_store import WatermarkStore
from shared.storage import StorageConnection


class StateStore:
    """Watermarks, leases, ID mappings, sync errors, instances and API budgets, in Azure Table
    Storage."""

    def __init__(
        self,
        service_factory: ServiceFactory,
        *,
        table_prefix: str = DEFAULT_PREFIX,
        clock: Clock = SYSTEM_CLOCK,
        mapping_buckets: int = DEFAULT_BUCKETS,
        max_filter_comparisons: int = MAX_COMPARISONS,
        error_policy: ErrorRetryPolicy | None = None,
        error_retention_days: int = DEFAULT_RETENTION_DAYS,
        mapping_indexed_types: Collection[str] = DEFAULT_INDEXED_TYPES,
    ) -> None:
        """Compose the parts.

        Args:
            service_factory: makes a ``TableServiceClient`` (called once per thread).
            table_prefix: prepended to every table name (letters and digits).
            clock: the source of every timestamp.
            mapping_buckets: partitions per (instance, entity) for ID mappings; fixed for the
                life of the tables (checked on first use).
            max_filter_comparisons: the service's per-filter comparison limit (15).
            error_policy: when failed records are retried.
            error_retention_days: how long sync errors are kept by :meth:`SyncErrorStore.purge`.
            mapping_indexed_types: Marketo types whose mappings are indexed by Marketo id
                (default: persons; see :mod:`shared.state.mappings`).
        """
        self.clock = clock
        self.tables = TableAccess(service_factory, TableNames(table_prefix))
        self.watermarks = WatermarkStore(self.tables, clock)
        self.leases = LeaseStore(self.tables, clock)
        self.mappings = MappingStore(
            self.tables,
            clock,
            MappingLayout(mapping_buckets),
            max_filter_comparisons,
            indexed_types=mapping_indexed_types,
        )
        self.errors = SyncErrorStore(
            self.tables, clock, error_policy, error_retention_days, max_filter_comparisons
        )
        self.instances = InstanceStore(self.tables, clock)
        self.backfills = BackfillStore(self.tables, clock)
        self.budgets = BudgetStore(self.tables)

    @classmethod
    def from_connection(cls, connection: StorageConnection, **options: Any) -> StateStore:
        """A store on ``connection`` (options as for the constructor)."""
        return cls(connection.table_service, **options)

    @classmethod
    def from_environment(
        cls, environ: Mapping[str, str] | None = None, *, table_prefix: str = DEFAULT_PREFIX
    ) -> StateStore:
        """A store on ``AzureWebJobsStorage``, keeping sync errors for
        ``SYNC_ERROR_RETENTION_DAYS``.

        Raises:
            ConfigurationError: a storage or sync setting is missing or malformed.
        """
        storage = load(StorageSettings, environ)
        sync = load(SyncSettings, environ)
        return cls(
            StorageConnection.from_settings(storage).table_service,
            table_prefix=table_prefix,
            error_retention_days=sync.error_retention_days,
        )

    def ensure_tables(self) -> None:
        """Create every table now (they are otherwise created on first use)."""
        self.tables.ensure_tables()

    def drop_tables(self) -> None:
        """Delete every table of this store's prefix (tests; all state is lost)."""
        self.tables.drop_tables()

    def copy_instance(
        self, source_id: str, target_id: str, *, marketo: MarketoInstance | None = None
    ) -> Instance:
        """Copy an instance's configuration into a new instance, as the stored rule allows.

        The copy has no watermarks, ID mappings, leases or sync errors; it starts in the rule's
        status (paused), not integrated with Dynamics.

        Raises:
            CopyRefusedError: with the reason: the source is integrated with Dynamics (Marketo's
                own wording, from the rule row), the source is missing, the target exists or
                still has sync state.
        """
        rule = self.instances.copy_rule()
        source = self.instances.get(source_id)
        decision = decide_copy(
            source,
            source_id,
            target_id,
            rule,
            target_exists=self.instances.get(target_id) is not None,
            target_has_state=bool(self.watermarks.list(target_id))
            or self.mappings.has_any(target_id),
        )
        if not decision.allowed:
            raise CopyRefusedError(f"cannot copy {source_id} to {target_id}: {decision.reason}")
        assert source is not None
        copy = build_copy(source, target_id, rule, self.clock.now(), marketo)
        return self.instances.create(copy)

    def status(self, instance_id: str | None = None) -> list[InstanceReport]:
        """Per instance (one, or every registered one plus any with leftover watermarks) and
        stream: phase, watermark age, counters, progress, lease holder, open errors."""
        now = self.clock.now()
        if instance_id is not None:
            ids = [instance_id]
            instances = {instance_id: self.instances.get(instance_id)}
        else:
            registered = self.instances.list()
            instances = {i.instance_id: i for i in registered}
            ids = sorted(set(instances) | {w.stream.instance_id for w in self.watermarks.list()})
        reports = []
        for iid in ids:
            open_counts = self.errors.count_open_by_kind(iid)
            reports.append(
                build_report(
                    iid,
                    instances.get(iid),
                    self.watermarks.list(iid),
                    self.leases.list(iid),
                    {stream: n for stream, (n, _) in open_counts.items() if n},
                    now,
                    pending_links={stream: p for stream, (_, p) in open_counts.items() if p},
                )
            )
        return reports
