"""Building ``$filter`` strings for table queries, with every value escaped.

We build filters ourselves instead of using the SDK's ``parameters=`` substitution: that splits
the filter on spaces and only replaces whole ``@name`` tokens (reference §8), which rules out the
parenthesised ``PartitionKey eq … and (RowKey eq … or …)`` shape a batched lookup needs. String
literals are single-quoted with inner quotes doubled (the OData rule the SDK applies too), so no
value can change a filter's structure.

The service allows at most 15 discrete comparisons in one ``$filter`` ("Querying tables and
entities", learn.microsoft.com/rest/api/storageservices/querying-tables-and-entities); Azurite
does not enforce it, so :func:`key_lookup_filters` does.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

MAX_COMPARISONS = 15
"""The service's limit on comparisons per ``$filter``."""


def string(value: str) -> str:
    """An OData string literal."""
    return "'" + value.replace("'", "''") + "'"


def timestamp(value: datetime) -> str:
    """An OData ``datetime'…'`` literal (UTC, microseconds)."""
    if value.tzinfo is None:
        raise ValueError("filter datetimes must be timezone-aware")
    text = value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return f"datetime'{text}'"


def integer(value: int) -> str:
    """An OData Int64 literal (``123L``); our counters are stored as Int64."""
    return f"{int(value)}L"


def boolean(value: bool) -> str:
    """An OData boolean literal."""
    return "true" if value else "false"


def compare(name: str, op: str, literal: str) -> str:
    """``name op literal``; ``literal`` must come from one of the literal functions above."""
    if op not in {"eq", "ne", "gt", "ge", "lt", "le"}:
        raise ValueError(f"unknown comparison operator {op!r}")
    return f"{name} {op} {literal}"


def all_of(*clauses: str) -> str:
    """Clauses joined by ``and`` (each parenthesised when it is compound)."""
    return " and ".join(_group(c) for c in clauses if c)


def any_of(*clauses: str) -> str:
    """Clauses joined by ``or``, parenthesised as a whole."""
    kept = [c for c in clauses if c]
    if len(kept) == 1:
        return kept[0]
    return "(" + " or ".join(_group(c) for c in kept) + ")"


def _group(clause: str) -> str:
    compound = (" and " in clause or " or " in clause) and not (
        clause.startswith("(") and clause.endswith(")")
    )
    return f"({clause})" if compound else clause


def key_range(partition_key: str, low: str, high: str) -> str:
    """Rows of one partition whose RowKey lies in ``[low, high)``."""
    return all_of(
        compare("PartitionKey", "eq", string(partition_key)),
        compare("RowKey", "ge", string(low)),
        compare("RowKey", "lt", string(high)),
    )


def key_lookup_filters(
    partition_key: str, row_keys: Sequence[str], max_comparisons: int = MAX_COMPARISONS
) -> list[str]:
    """Filters that together fetch the given rows of one partition, each within the limit.

    One comparison goes to the PartitionKey, so each filter names ``max_comparisons - 1`` rows.
    """
    if max_comparisons < 2:
        raise ValueError("max_comparisons must be at least 2")
    per_filter = max_comparisons - 1
    unique = list(dict.fromkeys(row_keys))
    return [
        all_of(
            compare("PartitionKey", "eq", string(partition_key)),
            any_of(*(compare("RowKey", "eq", string(rk)) for rk in unique[i : i + per_filter])),
        )
        for i in range(0, len(unique), per_filter)
    ]
