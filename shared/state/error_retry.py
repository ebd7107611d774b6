"""Retry now: an operator's request that failed records be tried again on the next job.

The request is written into the error rows themselves (a MERGE, conditioned on the row's ETag,
so a row the sync changed meanwhile is left alone): ``next_retry_at`` becomes the time of the
last failure, which every clock agrees is past, and ``retry_requested`` is set, which makes a
record whose attempts were used up due once more (:meth:`SyncErrorStore.due_for_retry` offers
it). The sync's next job of the stream picks the rows up, as it does any due retry; a new
failure replaces the row (``retry_requested`` is then gone: one extra try per request), a
success resolves it.

Nothing runs in the command's process: the deployed app does the retry with its own identity,
and the command only needs access to the state tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from azure.core import MatchConditions
from azure.data.tables import UpdateMode

from shared.state.properties import utc
from shared.state.sync_errors import SyncError, error_keys
from shared.state.tables import TableKind
from shared.state.transactions import TableOperation, plan_transactions, submit_skipping

if TYPE_CHECKING:  # the store imports this module's name for the retry query
    from shared.state.store import StateStore

RETRY_REQUESTED = "retry_requested"
"""The row property an operator's retry sets (absent on rows the sync wrote itself)."""

_MISSING_OR_CHANGED = frozenset({404, 412})


def request_retry(store: StateStore, errors: Sequence[SyncError]) -> list[SyncError]:
    """Make these open errors due at once; returns those marked (a row resolved, purged or
    failed again since it was read is skipped: the sync has moved on with it)."""
    candidates = [e for e in errors if not e.resolved and e.etag is not None]
    operations = []
    for error in candidates:
        side, record_id = error.record_id
        partition_key, row_key = error_keys(error.stream, side, record_id)
        operations.append(
            TableOperation(
                "update",
                {
                    "PartitionKey": partition_key,
                    "RowKey": row_key,
                    "next_retry_at": utc(error.last_seen),
                    RETRY_REQUESTED: True,
                },
                {
                    "mode": UpdateMode.MERGE,
                    "etag": error.etag,
                    "match_condition": MatchConditions.IfNotModified,
                },
            )
        )
    client = store.tables.client(TableKind.SYNC_ERRORS)
    skipped_keys: set[str] = set()
    for transaction in plan_transactions(operations):
        skipped = submit_skipping(client, transaction, _MISSING_OR_CHANGED, "requesting retries")
        skipped_keys.update(op.entity["RowKey"] for op in skipped)
    return [e for e in candidates if error_keys(e.stream, *e.record_id)[1] not in skipped_keys]
