"""Pure parts of the Dynamics emulator: filter, cookies, tokens, Prefer, multipart, changes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from emulators.dynamics.batch import ChangeSet, parse_batch
from emulators.dynamics.changetracking import DeltaToken, changes_between
from emulators.dynamics.config import EmulatorConfig
from emulators.dynamics.errors import ODataError
from emulators.dynamics.odata_filter import compile_filter
from emulators.dynamics.paging import PagingCookie
from emulators.dynamics.protocol import parse_key, parse_prefer
from emulators.dynamics.store import Database, Record

TABLES = EmulatorConfig().build_tables()
ACCOUNT = TABLES["account"]


def _matches(expression: str, row: dict[str, Any]) -> bool:
    return compile_filter(expression, ACCOUNT)(row)


def test_and_binds_tighter_than_or_and_not_tighter_than_and() -> None:
    """``a or b and c`` is ``a or (b and c)``; ``not a and b`` is ``(not a) and b``."""
    row = {"name": "x", "accountnumber": None, "numberofemployees": 1}
    assert _matches("name eq 'x' or accountnumber eq 'y' and numberofemployees eq 2", row)
    assert not _matches("(name eq 'x' or accountnumber eq 'y') and numberofemployees eq 2", row)
    assert not _matches("not name eq 'x' and numberofemployees eq 1", row)
    assert _matches("not (name eq 'y' and numberofemployees eq 1)", row)


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=30))
def test_any_string_literal_round_trips_through_quote_escaping(value: str) -> None:
    """A value quoted with '' escaping matches itself and not a longer value."""
    literal = "'" + value.replace("'", "''") + "'"
    assert _matches(f"name eq {literal}", {"name": value})
    assert not _matches(f"name eq {literal}", {"name": value + "x"})


def test_literal_on_the_left_is_mirrored() -> None:
    """``5 lt numberofemployees`` means ``numberofemployees gt 5``."""
    assert _matches("5 lt numberofemployees", {"numberofemployees": 6})
    assert not _matches("5 lt numberofemployees", {"numberofemployees": 5})


def test_datetime_literals_are_normalized_to_utc() -> None:
    """Offsets and missing seconds are accepted and compared in UTC."""
    row = {"createdon": "2024-01-01T10:00:00Z"}
    assert _matches("createdon eq 2024-01-01T12:00:00+02:00", row)
    assert _matches("createdon eq 2024-01-01T10:00Z", row)


def test_paging_cookie_round_trip() -> None:
    """Encode then decode gives the same cookie, in the documented outer shape."""
    cookie = PagingCookie(
        page=3,
        tracking=True,
        attrs={"version": "12"},
        last={"name": 'O\'Brien "x"', "accountid": "a"},
    )
    text = cookie.encode()
    assert text.startswith('<cookie pagenumber="3" pagingcookie="%3Ccookie%20page%3D%222%22')
    assert text.endswith('istracking="True" />')
    decoded = PagingCookie.decode(text)
    assert (decoded.page, decoded.tracking, decoded.attrs, decoded.last) == (
        3,
        True,
        {"version": "12"},
        cookie.last,
    )
    with pytest.raises(ODataError):
        PagingCookie.decode("<cookie/>")


def test_delta_token_format() -> None:
    """``<version>!<MM/dd/yyyy HH:mm:ss>`` both ways."""
    token = DeltaToken(919042, datetime(2017, 8, 22, 8, 10, 44, tzinfo=UTC))
    assert token.encode() == "919042!08/22/2017 08:10:44"
    assert DeltaToken.decode("12644418993!10/06/2022 20:06:12").version == 12644418993


def test_prefer_parsing_keeps_quoted_commas() -> None:
    """Several preferences in one header; a quoted annotation list is one value."""
    prefs = parse_prefer(
        "odata.track-changes, odata.maxpagesize=100, "
        'odata.include-annotations="OData.Community.Display.V1.FormattedValue,Microsoft.Dynamics.CRM.*"'
    )
    assert prefs.track_changes and prefs.max_page_size == 100
    assert (
        prefs.include_annotations
        == "OData.Community.Display.V1.FormattedValue,Microsoft.Dynamics.CRM.*"
    )


def test_keys_parse_guids_and_alternate_keys() -> None:
    """A bare GUID, or name=value pairs with quoted strings and numbers."""
    assert (
        parse_key("AAAAAAAA-0000-0000-0000-000000000001") == "aaaaaaaa-0000-0000-0000-000000000001"
    )
    assert parse_key("firstname='Joe',emailaddress1='o''b@example.com',x=2") == {
        "firstname": "Joe",
        "emailaddress1": "o'b@example.com",
        "x": 2,
    }


def test_multipart_with_lf_line_ends_and_a_changeset() -> None:
    """LF-only bodies parse; change sets keep their Content-IDs."""
    body = (
        b"--b\nContent-Type: multipart/mixed; boundary=cs\n\n"
        b"--cs\nContent-Type: application/http\nContent-ID: 1\n\n"
        b'POST accounts HTTP/1.1\nContent-Type: application/json\n\n{"name":"a"}\n'
        b"--cs--\n"
        b"--b\nContent-Type: application/http\n\nGET WhoAmI HTTP/1.1\n\n\n"
        b"--b--\n"
    )
    items = parse_batch(body, "multipart/mixed; boundary=b")
    assert isinstance(items[0], ChangeSet)
    assert items[0].requests[0].content_id == "1"
    assert items[0].requests[0].body == b'{"name":"a"}'
    assert not isinstance(items[1], ChangeSet) and items[1].url == "WhoAmI"


def test_changes_between_reports_latest_state_once_and_deletes_last() -> None:
    """Updated twice → once; created and deleted → a delete; changes after ``upto`` wait."""
    db = Database(EmulatorConfig().build_tables())
    data = db.data["account"]
    since = db.current_version
    db.write(data, "a", Record({"accountid": "a"}))
    db.write(data, "a", Record({"accountid": "a", "name": "2"}))
    db.write(data, "b", Record({"accountid": "b"}))
    db.remove(data, "b")
    db.write(data, "c", Record({"accountid": "c"}))
    upto = db.current_version
    db.write(data, "c", Record({"accountid": "c", "name": "later"}))
    upserts, deletes = changes_between(data, since, upto)
    assert [c.record_id for c in upserts] == ["a"]
    assert [c.record_id for c in deletes] == ["b"]
    assert [c.record_id for c in changes_between(data, upto, db.current_version)[0]] == ["c"]


def test_failed_transaction_rolls_back_rows_keys_and_log() -> None:
    """An exception inside a transaction undoes every write in it."""
    db = Database(EmulatorConfig().build_tables())
    data = db.data["contact"]
    db.write(data, "keep", Record({"contactid": "keep", "emailaddress1": "k@x.io"}))
    log_length = len(data.log_versions)

    def clash() -> None:
        with db.transaction():
            db.write(data, "new", Record({"contactid": "new", "emailaddress1": "n@x.io"}))
            db.write(data, "dup", Record({"contactid": "dup", "emailaddress1": "K@X.IO"}))

    with pytest.raises(ODataError):
        clash()
    assert list(data.rows) == ["keep"] and data.order == ["keep"]
    assert len(data.log_versions) == log_length
    assert data.find_by_key(("emailaddress1",), ("n@x.io",)) is None
