"""The Marketo REST API client and its rate governor.

Modules, each with one job:

=================  ===========================================================================
``client``         :class:`MarketoClient`, the facade the engine holds
``governor``       rate window, concurrency and daily budget: pure decisions + async plumbing
``transport``      the request loop: pool, token, governor, retries
``responses``      reading an answer: status, ``success``, ``errors``, network failures
``error_mapping``      Marketo codes and HTTP statuses → reaction and exception class (a table)
``auth``           access token fetch, cache, refresh
``batching``       ≤ 300 records and ≤ 1 MB per request, order kept; ``writes`` sends them
``encoding``       the one JSON serialiser and the size limits; ``redaction`` masks secrets
``outcomes``       per-record results → :class:`RecordOutcome`
``leads``          leads: sync, query, get, delete, describe
``objects``        companies, opportunities, roles, sales persons, custom objects
``activities``     change feeds: lead changes, deleted leads
``paging``         ``nextPageToken`` loops with loop detection; ``queries`` filter reads
``bulk``           bulk lead import jobs; ``bulk_csv`` builds and reads their files
``models``         typed results; ``stats`` call counters; ``quota_day`` Marketo's day
=================  ===========================================================================
"""

from shared.marketo.client import MarketoClient
from shared.marketo.governor import Governor, Limits, governor_for
from shared.marketo.models import (
    ChangeFeed,
    DeletedLead,
    ImportResult,
    ImportStatus,
    LeadChange,
    LeadField,
    ObjectDescription,
    Page,
    Reason,
    RecordOutcome,
)
from shared.marketo.objects import ObjectsApi, ObjectType
from shared.marketo.paging import PagingLoopError
from shared.marketo.stats import CallStats

__all__ = [
    "CallStats",
    "ChangeFeed",
    "DeletedLead",
    "Governor",
    "ImportResult",
    "ImportStatus",
    "LeadChange",
    "LeadField",
    "Limits",
    "MarketoClient",
    "ObjectDescription",
    "ObjectType",
    "ObjectsApi",
    "Page",
    "PagingLoopError",
    "Reason",
    "RecordOutcome",
    "governor_for",
]
