"""Filter building (escaping, the comparison limit) and property value codecs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from azure.data.tables import EdmType, EntityProperty
from hypothesis import given
from hypothesis import strategies as st

from shared.state import odata
from shared.state.properties import (
    TEXT_PART_UNITS,
    int64,
    read_datetime,
    read_int,
    read_long_text,
    split_text,
    truncate,
    utc,
    utf16_units,
    write_long_text,
)


def test_string_literals_double_single_quotes() -> None:
    """A quote inside a value cannot end the literal early."""
    assert odata.string("o'brien") == "'o''brien'"
    assert odata.compare("RowKey", "eq", odata.string("x' or 'a' eq 'a")) == (
        "RowKey eq 'x'' or ''a'' eq ''a'"
    )


def test_literals_for_other_types() -> None:
    """Datetimes are UTC with microseconds, integers Int64, booleans lower case."""
    moment = datetime(2026, 3, 1, 12, 0, 0, 5, tzinfo=timezone(timedelta(hours=2)))
    assert odata.timestamp(moment) == "datetime'2026-03-01T10:00:00.000005Z'"
    assert odata.integer(7) == "7L"
    assert odata.boolean(False) == "false"
    with pytest.raises(ValueError, match="timezone-aware"):
        odata.timestamp(datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="operator"):
        odata.compare("a", "like", "'x'")


def test_combinators_parenthesise_compound_clauses() -> None:
    """``or`` groups are parenthesised inside ``and`` so precedence cannot bite."""
    clause = odata.all_of("A eq 1", odata.any_of("B eq 2", "C eq 3"))
    assert clause == "A eq 1 and (B eq 2 or C eq 3)"
    assert odata.any_of("A eq 1") == "A eq 1"
    assert odata.any_of(odata.all_of("A eq 1", "B eq 2"), "C eq 3") == (
        "((A eq 1 and B eq 2) or C eq 3)"
    )


def test_key_lookups_respect_the_comparison_limit() -> None:
    """30 row keys need three filters of at most 14 rows (+1 PartitionKey comparison) each."""
    keys = [f"r{i}" for i in range(30)] + ["r0"]  # a duplicate is asked for once
    filters = odata.key_lookup_filters("p", keys)
    assert len(filters) == 3
    for text in filters:
        assert text.count(" eq ") <= odata.MAX_COMPARISONS
        assert text.startswith("PartitionKey eq 'p' and ")
    assert sum(f.count("RowKey eq") for f in filters) == 30
    assert len(odata.key_lookup_filters("p", keys, max_comparisons=100)) == 1


def test_int64_round_trip_and_int32_reads() -> None:
    """Counters are written Int64 and read back from either Int64 or a plain int."""
    prop = int64(2**40)
    assert prop == EntityProperty(2**40, EdmType.INT64)
    assert read_int({"n": prop}, "n") == 2**40
    assert read_int({"n": 5}, "n") == 5
    assert read_int({}, "n", default=3) == 3


def test_datetimes_come_back_as_plain_utc() -> None:
    """Offsets are normalised; naive datetimes are refused."""
    moment = datetime(2026, 1, 1, 1, 0, tzinfo=timezone(timedelta(hours=1)))
    assert utc(moment) == datetime(2026, 1, 1, 0, 0, tzinfo=UTC)
    assert type(utc(moment)) is datetime
    assert read_datetime({"t": moment}, "t") == datetime(2026, 1, 1, tzinfo=UTC)
    assert read_datetime({}, "t") is None
    with pytest.raises(ValueError, match="timezone-aware"):
        utc(datetime(2026, 1, 1))


def test_long_text_is_split_within_the_property_limit() -> None:
    """A 100,000-character cursor takes four parts of at most 32,000 units and rejoins."""
    cursor = "https://org.crm.dynamics.com/api/data/v9.2/contacts?$deltatoken=" + "x" * 99_936
    properties = write_long_text("cursor", cursor)
    assert properties["cursor_parts"] == 4
    assert all(len(properties[f"cursor_{i}"]) <= TEXT_PART_UNITS for i in range(4))
    assert read_long_text(properties, "cursor") == cursor


def test_none_and_empty_text_are_distinct() -> None:
    """``None`` writes no parts; the empty string one empty part."""
    assert read_long_text(write_long_text("c", None), "c") is None
    assert read_long_text(write_long_text("c", ""), "c") == ""


def test_too_long_text_is_refused_and_missing_parts_detected() -> None:
    """More than the part budget raises; a row with a part missing does not read silently."""
    with pytest.raises(ValueError, match="at most"):
        write_long_text("c", "x" * (TEXT_PART_UNITS * 2 + 1), max_parts=2)
    with pytest.raises(ValueError, match="missing"):
        read_long_text({"c_parts": 2, "c_0": "a"}, "c")


@given(st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=200))
def test_split_never_breaks_a_character_and_respects_units(text: str) -> None:
    """Parts rejoin exactly and each holds at most the unit budget (astral chars count 2)."""
    parts = split_text(text, units=7)
    assert "".join(parts) == text
    assert all(utf16_units(p) <= 7 for p in parts)


def test_truncate_marks_the_cut() -> None:
    """Short text is kept; long text is cut to the limit with a visible mark."""
    assert truncate("short", 10) == "short"
    cut = truncate("x" * 50, 20)
    assert len(cut) == 20 and cut.endswith("[truncated]")
