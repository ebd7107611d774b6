"""Reading many rows by key from the bucketed mapping tables, in as few requests as it takes.

Per partition, either filters naming up to 14 rows each (the 15-comparison limit) or a scan
of the partition page by page, whichever costs fewer requests (:func:`scan_partition`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient

from shared.state import odata
from shared.state.tables import storage_errors

SCAN_MIN_IDS = 42
"""Ids of one partition from which a lookup tries a scan first (three filters' worth)."""
SCAN_PAGE = 1000
"""Rows per scan page (the service's maximum)."""
SCAN_MIN_HITS_PER_PAGE = 56
"""A scan of a few columns (``link_states``) continues while each page holds at least this
many wanted rows (four filters' worth: a 1,000-row page of three columns costs about as much
CPU as four small queries)."""
SCAN_MIN_HITS_WHOLE_ROWS = 300
"""The same for whole mapping rows, whose decoding costs ~80 µs a row (timestamps, per-field
maps) against ~2 ms for a 14-row query: a scan page pays only if about a third of it is
wanted. Measured (``bench/mapping_storage_bench.py --preload 40000``): with 56, reading 5,000
persons out of 45,000 scanned every partition to its end, 671 µs of CPU a record; by filters
alone 250 µs."""


@dataclass(frozen=True)
class ReadPolicy:
    """When a partition is scanned rather than filtered, and the filter size limit."""

    max_comparisons: int = odata.MAX_COMPARISONS
    scan_min_ids: int = SCAN_MIN_IDS
    scan_page: int = SCAN_PAGE
    scan_min_hits: int = SCAN_MIN_HITS_PER_PAGE
    scan_min_hits_whole_rows: int = SCAN_MIN_HITS_WHOLE_ROWS


def point_read(client: TableClient, key: tuple[str, str], action: str) -> Any | None:
    """One row by its key, or ``None``."""
    try:
        with storage_errors(action, expected=(ResourceNotFoundError,)):
            return client.get_entity(*key)
    except ResourceNotFoundError:
        return None


def query_rows(
    client: TableClient,
    keys: Sequence[tuple[str, str]],
    action: str,
    policy: ReadPolicy,
    select: list[str] | None = None,
    *,
    light: bool = False,
) -> list[Any]:
    """The rows that exist among ``keys``: per partition, a scan or as few filters as the
    comparison limit allows, whichever costs less (see :func:`scan_partition`). ``light``:
    ``select`` names a few small columns, so scanned rows are cheap to decode."""
    min_hits = policy.scan_min_hits if light else policy.scan_min_hits_whole_rows
    by_partition: dict[str, list[str]] = {}
    for partition_key, row_key in keys:
        by_partition.setdefault(partition_key, []).append(row_key)
    rows: list[Any] = []
    with storage_errors(action):
        for partition_key, row_keys in by_partition.items():
            wanted = list(dict.fromkeys(row_keys))
            if len(wanted) >= policy.scan_min_ids:
                wanted = scan_partition(
                    client, partition_key, wanted, select, rows, policy.scan_page, min_hits
                )
            for query in odata.key_lookup_filters(partition_key, wanted, policy.max_comparisons):
                rows.extend(client.query_entities(query, select=select))
    return rows


def scan_partition(
    client: TableClient,
    partition_key: str,
    wanted: list[str],
    select: list[str] | None,
    found: list[Any],
    page_size: int,
    min_hits: int,
) -> list[str]:
    """Read a partition page by page, keeping the wanted rows in ``found``; returns the
    wanted keys still to look up by filter (none once the partition was read to its end).

    A filter names 14 rows, so ``n`` ids of a partition cost ``⌈n / 14⌉`` requests, while a
    scan page brings up to 1,000 rows in one. The scan goes on while its pages are dense
    enough to beat the filters (``min_hits`` wanted rows a page); on a big
    partition with few wanted rows it stops after one page and the filters take the rest.
    This is what reading the links of a page of contacts needs: their 1,700 accounts are
    most of the account mappings, and 16 scans replace about 130 queries.
    """
    remaining = set(wanted)
    query = odata.compare("PartitionKey", "eq", odata.string(partition_key))
    pages = client.query_entities(query, select=select, results_per_page=page_size).by_page()
    for page in pages:
        hits = 0
        for row in page:
            if row["RowKey"] in remaining:
                remaining.discard(row["RowKey"])
                found.append(row)
                hits += 1
        if not remaining or not getattr(pages, "continuation_token", "unknown"):
            return []  # all found, or the partition was read to its end
        if hits < min_hits:
            return [key for key in wanted if key in remaining]
    return []  # no page left: the rest do not exist


def range_clauses(low: str, high: str, after: str) -> list[str]:
    """Filter clauses for the rows whose PartitionKey lies in ``[low, high)`` and that come
    after the position ``after`` (``"PartitionKey\\tRowKey"``; ``""``: from the start)."""
    clauses = [
        odata.compare("PartitionKey", "ge", odata.string(low)),
        odata.compare("PartitionKey", "lt", odata.string(high)),
    ]
    if after:
        partition_key, row_key = after.split("\t", 1)
        clauses.append(
            odata.any_of(
                odata.compare("PartitionKey", "gt", odata.string(partition_key)),
                odata.all_of(
                    odata.compare("PartitionKey", "eq", odata.string(partition_key)),
                    odata.compare("RowKey", "gt", odata.string(row_key)),
                ),
            )
        )
    return clauses


def read_page(
    client: TableClient,
    clauses: list[str],
    limit: int,
    action: str,
    select: list[str] | None = None,
) -> tuple[list[Any], str | None]:
    """Up to ``limit`` rows matching ``clauses`` in key order, and the position after the last
    one (``None`` when there are no more)."""
    rows: list[Any] = []
    with storage_errors(action):
        for row in client.query_entities(
            odata.all_of(*clauses), select=select, results_per_page=limit
        ):
            rows.append(row)
            if len(rows) >= limit:
                break
    position = f"{rows[-1]['PartitionKey']}\t{rows[-1]['RowKey']}" if len(rows) >= limit else None
    return rows, position


def first_row(client: TableClient, low: str, high: str, action: str, select: list[str]) -> Any:
    """One row (its ``select`` columns) whose PartitionKey lies in ``[low, high)``, or
    ``None``: a one-row query, to learn whether a range holds anything."""
    with storage_errors(action):
        pages = client.query_entities(
            odata.all_of(*range_clauses(low, high, "")), select=select, results_per_page=1
        )
        return next(iter(pages), None)


def rows_with_values(
    client: TableClient,
    low: str,
    high: str,
    column: str,
    values: Sequence[str],
    action: str,
    extra: Sequence[str] = (),
) -> list[Any]:
    """Rows in the PartitionKey range ``[low, high)`` whose ``column`` holds one of
    ``values`` (and that match the ``extra`` clauses): property filters, which the service
    answers by reading every row of the range, so never for a batch path."""
    per_filter = odata.MAX_COMPARISONS - 2 - len(extra)
    rows: list[Any] = []
    with storage_errors(action):
        for start in range(0, len(values), per_filter):
            chunk = values[start : start + per_filter]
            clauses = [
                *range_clauses(low, high, ""),
                *extra,
                odata.any_of(*(odata.compare(column, "eq", odata.string(v)) for v in chunk)),
            ]
            rows.extend(client.query_entities(odata.all_of(*clauses)))
    return rows
