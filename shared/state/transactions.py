"""Grouping writes into entity-group transactions the service accepts.

A transaction (``TableClient.submit_transaction``) is all-or-nothing and must hold operations on
**one PartitionKey**, **at most 100** of them, in **at most 4 MiB**; an entity may appear only
once in it (reference §8; Azurite answers a duplicate with ``InvalidDuplicateRow`` and a 101st
operation with a malformed response). :func:`plan_transactions` is the pure part: it keeps the
last operation per row, groups by partition and cuts each group into chunks within the limits.
:func:`submit_transaction` sends one through :mod:`shared.state.batch_wire` (the SDK's request
pipeline, without its generic multipart code).
"""

from __future__ import annotations

import contextvars
import json
import logging
from collections.abc import Iterable, Mapping
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from azure.data.tables import TableClient, TableTransactionError

from shared.state import batch_wire
from shared.state.tables import storage_errors, translate_storage_error

log = logging.getLogger(__name__)

MAX_OPERATIONS = 100
"""Operations per transaction (service limit)."""

MAX_BODY_BYTES = 3 * 1024 * 1024
"""Our budget for one transaction's entities: below the 4 MiB request limit, leaving room for
the multipart framing and headers around each operation."""


@dataclass(frozen=True)
class TableOperation:
    """One write: ``kind`` is ``create``, ``upsert``, ``update`` or ``delete``."""

    kind: str
    entity: Mapping[str, Any]
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def row(self) -> tuple[str, str]:
        """``(PartitionKey, RowKey)`` of the row this operation touches."""
        return str(self.entity["PartitionKey"]), str(self.entity["RowKey"])

    def as_sdk_tuple(self) -> tuple[Any, ...]:
        """The tuple form ``submit_transaction`` takes."""
        if self.options:
            return (self.kind, dict(self.entity), dict(self.options))
        return (self.kind, dict(self.entity))


def estimated_bytes(entity: Mapping[str, Any]) -> int:
    """A generous estimate of an entity's size in a request body (JSON, UTF-8, plus framing)."""
    body = json.dumps(entity, default=str, ensure_ascii=False)
    return len(body.encode("utf-8", "surrogatepass")) + 512


def quick_bound(entity: Mapping[str, Any]) -> int | None:
    """A cheap upper bound of :func:`estimated_bytes` (no serialisation), or ``None`` for a
    value type it does not bound. A character takes at most 6 bytes in JSON (a ``\\u`` escape)."""
    total = 514
    for name, value in entity.items():
        total += 6 * len(name) + 6
        if isinstance(value, str):
            total += 6 * len(value) + 2
        elif value is None or isinstance(value, bool):
            total += 8
        elif isinstance(value, int):
            total += len(str(value)) + 2
        elif isinstance(value, float | datetime):
            total += 40
        else:
            return None
    return total


def plan_transactions(
    operations: Iterable[TableOperation],
    *,
    max_operations: int = MAX_OPERATIONS,
    max_bytes: int = MAX_BODY_BYTES,
) -> list[list[TableOperation]]:
    """Group ``operations`` into transactions: one partition each, within both limits.

    A later operation on the same row replaces an earlier one (an entity may appear only once
    per transaction, and the later write is the one the caller wants to stand). Partitions keep
    the order in which they first appear; rows keep their order within a partition.
    """
    if not 1 <= max_operations <= MAX_OPERATIONS:
        raise ValueError(f"max_operations must be within 1..{MAX_OPERATIONS}")
    latest: dict[tuple[str, str], TableOperation] = {}
    for operation in operations:
        latest.pop(operation.row, None)  # re-insert so the row takes its latest position
        latest[operation.row] = operation
    by_partition: dict[str, list[TableOperation]] = {}
    for (partition, _), operation in latest.items():
        by_partition.setdefault(partition, []).append(operation)
    plan: list[list[TableOperation]] = []
    for group in by_partition.values():
        chunk: list[TableOperation] = []
        chunk_bytes = 0
        for operation in group:
            # Rows small enough that 100 of them fit the budget are counted by a cheap bound
            # (the byte limit cannot bind for them); bigger ones are measured.
            bound = quick_bound(operation.entity)
            small = bound is not None and bound <= max_bytes // max_operations
            size = bound if small and bound is not None else estimated_bytes(operation.entity)
            if chunk and (len(chunk) >= max_operations or chunk_bytes + size > max_bytes):
                plan.append(chunk)
                chunk, chunk_bytes = [], 0
            chunk.append(operation)
            chunk_bytes += size
        if chunk:
            plan.append(chunk)
    return plan


def submit_transaction(
    client: TableClient, transaction: list[TableOperation]
) -> list[Mapping[str, Any]]:
    """Submit one planned transaction; one metadata dict (``etag``) per operation.

    Raises:
        TableTransactionError: as ``TableClient.submit_transaction`` raises it.
    """
    return batch_wire.submit(client, [(op.kind, op.entity, op.options) for op in transaction])


def submit_skipping(
    client: TableClient,
    transaction: list[TableOperation],
    skip_statuses: frozenset[int],
    action: str,
) -> list[TableOperation]:
    """Submit one planned transaction, dropping operations that fail with ``skip_statuses``.

    The service rejects a whole transaction and names the operation at fault (``.index``); that
    operation is dropped and the rest resubmitted, so this sends at most one request more than
    there are skipped operations. Use it where a missing row (404) or a row changed meanwhile
    (412) means "nothing to do for this one".

    Returns:
        The skipped operations.

    Raises:
        DmsyncError: any other failure, translated.
    """
    skipped: list[TableOperation] = []
    remaining = list(transaction)
    while remaining:
        try:
            with storage_errors(action, expected=(TableTransactionError,)):
                submit_transaction(client, remaining)
            return skipped
        except TableTransactionError as exc:
            index = getattr(exc, "index", None)
            if (
                exc.status_code not in skip_statuses
                or index is None
                or not 0 <= index < len(remaining)
            ):
                raise translate_storage_error(exc, action) from exc
            skipped.append(remaining.pop(index))
    return skipped


PARALLEL_TRANSACTIONS = 4
"""Transactions of one :func:`submit_all` call in flight at once. Each is one round trip to the
service (tens of milliseconds in Azure); sent one after another, a page of 5,000 mappings
(two rows each, 100 rows a transaction) would wait about 100 round trips."""


def submit_all(
    client: TableClient,
    operations: Iterable[TableOperation],
    action: str,
    *,
    parallel: int = PARALLEL_TRANSACTIONS,
) -> int:
    """Plan and submit every operation; returns the number of transactions sent.

    The planned transactions touch disjoint rows (:func:`plan_transactions` keeps one
    operation per row), so up to ``parallel`` of them are sent at once; the table client's
    pipeline is safe to share between threads. On a failure, transactions not yet started are
    not sent.

    Raises:
        DmsyncError: the first transaction (in planned order) that failed, translated.
            Transactions are atomic each; the call as a whole is not (those sent stay applied).
    """
    plan = plan_transactions(operations)

    def send(transaction: list[TableOperation]) -> None:
        with storage_errors(action):
            submit_transaction(client, transaction)

    if parallel <= 1 or len(plan) <= 1:
        for transaction in plan:
            send(transaction)
        return len(plan)
    with ThreadPoolExecutor(min(parallel, len(plan)), thread_name_prefix="table-tx") as pool:
        # Each transaction runs in a copy of the caller's context (trace spans, log context).
        futures = [
            pool.submit(contextvars.copy_context().run, send, transaction) for transaction in plan
        ]
        wait(futures, return_when=FIRST_EXCEPTION)
        if any(f.done() and f.exception() is not None for f in futures):
            for future in futures:
                future.cancel()  # not started yet: not sent
        wait(futures)
    failures = [
        error for f in futures if not f.cancelled() and (error := f.exception()) is not None
    ]
    for later in failures[1:]:
        log.warning("%s: another transaction of the same call failed too: %s", action, later)
    if failures:
        raise failures[0]  # the first failure in planned order
    return len(plan)
