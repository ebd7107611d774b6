"""OData text: literals, $filter, key segments and query encoding keep values in their quotes."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from urllib.parse import parse_qsl, unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.dynamics import odata
from shared.dynamics.odata import (
    KEY_UNSUPPORTED_CHARACTERS,
    Filter,
    all_of,
    contains,
    encode_query,
    eq,
    identifier,
    key_segment,
    literal,
    ne,
    one_of,
    string_literal,
)

GUID = "60C4E274-0A5B-4F7B-9E3C-1A2B3C4D5E6F"


def read_string_literal(text: str) -> tuple[str, str]:
    """Parse one OData string literal at the start of ``text``: (its value, what follows).

    An independent reading of the OData ABNF: inside quotes, ``''`` is one quote and a lone
    ``'`` ends the literal.
    """
    assert text.startswith("'")
    value = []
    i = 1
    while i < len(text):
        if text[i] == "'":
            if i + 1 < len(text) and text[i + 1] == "'":
                value.append("'")
                i += 2
                continue
            return "".join(value), text[i + 1 :]
        value.append(text[i])
        i += 1
    raise AssertionError("unterminated string literal")


def test_string_literal_doubles_quotes() -> None:
    """O'Brien becomes 'O''Brien'."""
    assert string_literal("O'Brien") == "'O''Brien'"
    assert string_literal("") == "''"
    assert string_literal("''") == "''''''"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "null"),
        (True, "true"),
        (False, "false"),
        (42, "42"),
        (-7, "-7"),
        (1.5, "1.5"),
        (Decimal("12.340"), "12.340"),
        (uuid.UUID(GUID), GUID.lower()),
        (datetime(2026, 3, 1, 8, 30, tzinfo=UTC), "2026-03-01T08:30:00Z"),
        (datetime(2026, 3, 1, 10, 30, tzinfo=timezone(timedelta(hours=2))), "2026-03-01T08:30:00Z"),
        (datetime(2026, 3, 1, 8, 30, 0, 5000, tzinfo=UTC), "2026-03-01T08:30:00.005000Z"),
        (date(2026, 3, 1), "2026-03-01"),
        ("it's", "'it''s'"),
    ],
)
def test_literals(value: odata.ODataValue, expected: str) -> None:
    """Each supported type has its OData literal; date times are normalised to UTC."""
    assert literal(value) == expected


@pytest.mark.parametrize(
    "value", [float("nan"), float("inf"), Decimal("NaN"), datetime(2026, 1, 1), object()]
)
def test_values_without_a_literal_are_refused(value: object) -> None:
    """NaN, infinity, naive date times and unknown types raise instead of guessing."""
    with pytest.raises(ValueError):  # noqa: PT011 - the message varies by type
        literal(value)  # type: ignore[arg-type]


def test_guid_literal_normalises_and_validates() -> None:
    """GUIDs are lower-cased, braces dropped; anything else is refused."""
    assert odata.guid_literal("{" + GUID + "}") == GUID.lower()
    with pytest.raises(ValueError, match="not a GUID"):
        odata.guid_literal("60c4e274' or 1 eq 1")


@pytest.mark.parametrize("name", ["", "a b", "name eq 'x'", "x)", "1abc", "a/b", "a" * 129])
def test_identifiers_are_checked(name: str) -> None:
    """Column and table names that are not plain identifiers are refused."""
    with pytest.raises(ValueError, match="not a valid Dataverse name"):
        identifier(name)


def test_filter_building() -> None:
    """Comparisons, functions and combinations come out parenthesised and escaped."""
    expression = eq("lastname", "O'Brien") & ne("statecode", 1)
    assert expression.text == "(lastname eq 'O''Brien') and (statecode ne 1)"
    assert (~eq("a", None)).text == "not (a eq null)"
    assert (eq("a", 1) | eq("b", 2)).text == "(a eq 1) or (b eq 2)"
    assert contains("name", "x'y").text == "contains(name,'x''y')"
    assert all_of(eq("a", 1), eq("b", True)).text == "(a eq 1) and (b eq true)"
    ids = [uuid.UUID(int=1), uuid.UUID(int=2)]
    assert one_of("contactid", ids).text == (
        "(contactid eq 00000000-0000-0000-0000-000000000001) or "
        "(contactid eq 00000000-0000-0000-0000-000000000002)"
    )
    with pytest.raises(ValueError, match="not a valid Dataverse name"):
        eq("name) or (1 eq 1", "x")


def test_encode_query_keeps_separators_inside_values() -> None:
    """& # + % = and spaces in a value are percent-encoded; OData punctuation stays readable."""
    query = encode_query({"$select": "name,accountid", "$filter": "name eq 'A&B=C #1 +50%'"})
    assert query == ("$select=name,accountid&$filter=name%20eq%20'A%26B%3DC%20%231%20%2B50%25'")


def test_key_segments() -> None:
    """GUID keys, alternate keys (several columns, numbers, lookups) and escaping."""
    assert key_segment(GUID) == f"({GUID.lower()})"
    assert key_segment({"accountnumber": "ABC123"}) == "(accountnumber='ABC123')"
    assert key_segment({"firstname": "Joe", "emailaddress1": "joe@example.com"}) == (
        "(firstname='Joe',emailaddress1='joe%40example.com')"
    )
    assert key_segment({"example_key1": 2, "example_key2": 2}) == "(example_key1=2,example_key2=2)"
    lookup = uuid.UUID(int=5)
    assert key_segment({"_primarycontactid_value": lookup}) == f"(_primarycontactid_value={lookup})"
    assert key_segment({"lastname": "O'Brien Ünal"}) == "(lastname='O''Brien%20%C3%9Cnal')"


@pytest.mark.parametrize("char", sorted(KEY_UNSUPPORTED_CHARACTERS))
def test_key_values_dataverse_cannot_address_are_refused(char: str) -> None:
    """/ < > * % & : \\ ? + in a key string are refused before any request is made."""
    with pytest.raises(ValueError, match="cannot address by key"):
        key_segment({"accountnumber": f"A{char}B"})


def test_bad_keys_are_refused() -> None:
    """A non-GUID string and an empty alternate key are not keys."""
    with pytest.raises(ValueError, match="not a GUID"):
        key_segment("ABC123")
    with pytest.raises(ValueError, match="at least one column"):
        key_segment({})


@given(st.text())
def test_a_filter_value_can_never_leave_its_literal(value: str) -> None:
    """Whatever the value, the filter is `name eq '<literal>'` and the literal reads back as it."""
    expression = eq("name", value).text
    assert expression.startswith("name eq ")
    decoded, rest = read_string_literal(expression[len("name eq ") :])
    assert decoded == value
    assert rest == ""


@given(st.text())
def test_an_encoded_filter_is_one_query_option_that_decodes_to_itself(value: str) -> None:
    """After URL encoding, the query holds exactly the two options and the filter unchanged."""
    expression = (eq("name", value) & eq("statecode", 0)).text
    query = encode_query({"$select": "name", "$filter": expression})
    options = parse_qsl(query, keep_blank_values=True, strict_parsing=True)
    assert options == [("$select", "name"), ("$filter", expression)]


@given(st.text().filter(lambda s: not set(s) & KEY_UNSUPPORTED_CHARACTERS))
def test_a_key_value_stays_one_path_segment(value: str) -> None:
    """An alternate-key value never adds a path segment, query or fragment, and decodes back."""
    segment = key_segment({"accountnumber": value})
    assert not set(segment) & set("/?#& ")
    assert unquote(segment) == f"(accountnumber={string_literal(value)})"


def test_filter_is_a_value_object() -> None:
    """Filters compare by text and print as their text."""
    assert Filter("a eq 1") == Filter("a eq 1")
    assert str(Filter("a eq 1")) == "a eq 1"
