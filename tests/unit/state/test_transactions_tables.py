"""Transaction planning (one partition, ≤100 operations, size budget), table names, errors."""

from __future__ import annotations

from datetime import UTC

import pytest
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceModifiedError,
    ServiceRequestError,
)
from hypothesis import given
from hypothesis import strategies as st

from shared.errors import (
    ApiRequestError,
    AuthenticationError,
    ConcurrencyConflict,
    ConfigurationError,
    ThrottledError,
    TransientServiceError,
)
from shared.state.tables import TableKind, TableNames, translate_storage_error
from shared.state.transactions import (
    TableOperation,
    estimated_bytes,
    plan_transactions,
    quick_bound,
)


def _op(partition: str, row: int, kind: str = "upsert", **extra: object) -> TableOperation:
    return TableOperation(kind, {"PartitionKey": partition, "RowKey": f"r{row:04d}", **extra})


def test_more_than_100_rows_in_one_partition_are_chunked() -> None:
    """250 rows of one partition make transactions of 100, 100 and 50, in order."""
    plan = plan_transactions(_op("p", i) for i in range(250))
    assert [len(t) for t in plan] == [100, 100, 50]
    assert [op.row[1] for t in plan for op in t] == [f"r{i:04d}" for i in range(250)]


def test_rows_across_partitions_are_grouped_per_partition() -> None:
    """Interleaved partitions are regrouped; no transaction mixes partitions."""
    plan = plan_transactions(_op(f"p{i % 3}", i) for i in range(330))
    assert [len(t) for t in plan] == [100, 10, 100, 10, 100, 10]
    assert all(len({op.row[0] for op in t}) == 1 for t in plan)
    assert [t[0].row[0] for t in plan] == ["p0", "p0", "p1", "p1", "p2", "p2"]


def test_a_later_operation_on_the_same_row_replaces_the_earlier() -> None:
    """An entity may appear once per transaction; the last write is the one kept."""
    plan = plan_transactions([_op("p", 1, v=1), _op("p", 2), _op("p", 1, v=2)])
    assert [[op.row[1] for op in t] for t in plan] == [["r0002", "r0001"]]
    assert plan[0][1].entity["v"] == 2


def test_the_body_budget_cuts_large_rows_sooner() -> None:
    """Rows of ~100 KB are cut at the byte budget, not at 100 operations."""
    plan = plan_transactions(
        (_op("p", i, blob="x" * 100_000) for i in range(50)), max_bytes=1_000_000
    )
    assert [len(t) for t in plan] == [9, 9, 9, 9, 9, 5]


def test_operation_limit_is_validated() -> None:
    """The planner never plans more than the service accepts."""
    with pytest.raises(ValueError, match="max_operations"):
        plan_transactions([], max_operations=101)


def test_table_names_take_the_prefix_and_stay_valid() -> None:
    """Names are prefix + kind; bad or over-long prefixes are refused up front."""
    names = TableNames("t0123456789ab")
    assert names.name(TableKind.MAPPINGS_BY_MARKETO) == "t0123456789abMappingsByMarketo"
    assert TableNames().name(TableKind.WATERMARKS) == "dmsyncWatermarks"
    for bad in ["", "1abc", "has-dash", "under_score"]:
        with pytest.raises(ConfigurationError, match="invalid"):
            TableNames(bad)
    with pytest.raises(ConfigurationError, match="too long"):
        TableNames("a" * 50)


def _http_error(status: int, code: str | None = None) -> HttpResponseError:
    error = HttpResponseError(message="boom")
    error.status_code = status
    error.error_code = code
    return error


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (ResourceModifiedError(message="x"), ConcurrencyConflict),
        (_http_error(412, "UpdateConditionNotSatisfied"), ConcurrencyConflict),
        (ClientAuthenticationError(message="x"), AuthenticationError),
        (ServiceRequestError("connection refused"), TransientServiceError),
        (_http_error(503, "ServerBusy"), ThrottledError),
        (_http_error(429), ThrottledError),
        (_http_error(500, "InternalError"), TransientServiceError),
        (_http_error(400, "InvalidInput"), ApiRequestError),
    ],
)
def test_storage_errors_map_onto_the_taxonomy(error: Exception, expected: type) -> None:
    """Each azure-core failure becomes the error class that tells the caller what to do."""
    translated = translate_storage_error(error, "doing a thing")
    assert type(translated) is expected
    assert str(translated).startswith("doing a thing")
    assert translated.system == "storage"


@given(
    st.dictionaries(
        st.text(min_size=1, max_size=20),
        st.one_of(
            st.none(),
            st.booleans(),
            st.integers(),
            st.floats(allow_nan=False),
            st.text(max_size=300),
            st.datetimes(timezones=st.just(UTC)),
        ),
        max_size=12,
    )
)
def test_the_quick_bound_is_never_below_the_estimate(entity: dict[str, object]) -> None:
    """Any text (escapes, astral characters), numbers and datetimes: bound ≥ estimate."""
    bound = quick_bound(entity)
    assert bound is not None and bound >= estimated_bytes(entity)


def test_small_rows_are_counted_by_the_bound_and_big_ones_measured() -> None:
    """Unbounded value types are measured; 100 small rows still fill one transaction."""
    assert quick_bound({"x": b"bytes"}) is None
    plan = plan_transactions(_op("p", i, text="é" * 200) for i in range(250))
    assert [len(t) for t in plan] == [100, 100, 50]
