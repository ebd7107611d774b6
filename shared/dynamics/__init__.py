"""The Dataverse (Dynamics 365) Web API client.

Modules, each with one job:

* :mod:`~shared.dynamics.auth`: azure-identity credential and token cache/refresh
* :mod:`~shared.dynamics.transport`: the request loop (headers, 401 refresh, retries)
* :mod:`~shared.dynamics.limiter`, :mod:`~shared.dynamics.counters`: concurrency cap, call counts
* :mod:`~shared.dynamics.error_mapping`: HTTP status + OData error body → ``shared.errors``
* :mod:`~shared.dynamics.odata`: literals, ``$filter``, key segments, query encoding
* :mod:`~shared.dynamics.reads`, :mod:`~shared.dynamics.writes`, :mod:`~shared.dynamics.batch`
* :mod:`~shared.dynamics.metadata`, :mod:`~shared.dynamics.identity`
* :mod:`~shared.dynamics.client`: :class:`DynamicsClient`, which wires them together
"""

from shared.dynamics.batch import BatchItem, BatchItemResult, BatchOperation, ChangeSet
from shared.dynamics.client import DynamicsClient
from shared.dynamics.counters import CallCounters
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
from shared.dynamics.writes import RecordKey

__all__ = [
    "BatchItem",
    "BatchItemResult",
    "BatchOperation",
    "CallCounters",
    "ChangePage",
    "ChangeSet",
    "ChangedRecord",
    "ChoiceColumn",
    "DynamicsClient",
    "Filter",
    "OrganizationDetail",
    "OrganizationInfo",
    "RecordCount",
    "RecordKey",
    "TableDefinition",
    "TableRef",
    "WhoAmI",
    "WriteResult",
]
