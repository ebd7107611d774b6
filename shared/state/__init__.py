"""All sync state in Azure Table Storage: watermarks, leases, ID mappings, sync errors, instances.

Start from :class:`StateStore`; the modules hold one concern each:

* :mod:`~shared.state.keys`: reversible, order-preserving key encoding
* :mod:`~shared.state.odata`, :mod:`~shared.state.properties`, :mod:`~shared.state.transactions`,
  :mod:`~shared.state.tables`: filters, property values, batched writes, clients and errors
* :mod:`~shared.state.watermarks` / ``watermark_store``, :mod:`~shared.state.leases` /
  ``lease_store``, :mod:`~shared.state.mappings` / ``mapping_store``,
  :mod:`~shared.state.sync_errors` / ``sync_error_store``, :mod:`~shared.state.instances` /
  ``instance_store``: each concern's pure rules and records, then its table I/O
* ID mappings in more detail: :mod:`~shared.state.mapping_rows` (row form, both layouts),
  :mod:`~shared.state.mapping_reads` (bulk reads by key), :mod:`~shared.state.marketo_index`
  (the index by Marketo id and its backfill), :mod:`~shared.state.layout_guard` (the layout
  row)
* :mod:`~shared.state.status`: the operator's report
"""

from shared.state.instances import (
    CopyRefusedError,
    CopyRule,
    DynamicsOrganization,
    Instance,
    InstanceStatus,
    MarketoInstance,
)
from shared.state.leases import Lease, StreamLeaseHeldError
from shared.state.mappings import (
    IdMapping,
    MappingConflict,
    MappingConflictError,
    MappingLayout,
    MappingUpdate,
    SyncFilter,
    fields_hash,
    split_conflicts,
)
from shared.state.status import InstanceReport, StreamStatus
from shared.state.store import StateStore
from shared.state.streams import StreamId
from shared.state.sync_errors import ErrorRetryPolicy, FailedRecord, SyncError
from shared.state.watermarks import Phase, RunCounts, StaleRunError, Watermark

__all__ = [
    "CopyRefusedError",
    "CopyRule",
    "DynamicsOrganization",
    "ErrorRetryPolicy",
    "FailedRecord",
    "IdMapping",
    "Instance",
    "InstanceReport",
    "InstanceStatus",
    "Lease",
    "MappingConflict",
    "MappingConflictError",
    "MappingLayout",
    "MappingUpdate",
    "MarketoInstance",
    "Phase",
    "RunCounts",
    "StaleRunError",
    "StateStore",
    "StreamId",
    "StreamLeaseHeldError",
    "StreamStatus",
    "SyncError",
    "SyncFilter",
    "Watermark",
    "fields_hash",
    "split_conflicts",
]
