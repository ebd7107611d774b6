"""HTTP status + OData error code → the project's error taxonomy."""

from __future__ import annotations

import pytest

from shared.dynamics.error_mapping import (
    ODataError,
    map_error,
    normalize_code,
    parse_error_body,
)
from shared.errors import (
    ApiRequestError,
    AuthenticationError,
    ConcurrencyConflict,
    DeltaTokenExpiredError,
    DmsyncError,
    RecordError,
    RecordRef,
    ThrottledError,
    TransientServiceError,
)

RECORD = RecordRef(entity="contact", dynamics_id="00000000-0000-0000-0000-000000000001")


@pytest.mark.parametrize(
    ("status", "code", "record", "expected"),
    [
        (400, "0x80044352", None, DeltaTokenExpiredError),  # ExpiredVersionStamp
        (500, "0x80044352", None, DeltaTokenExpiredError),
        (429, "0x80072322", None, ThrottledError),  # request count
        (429, "0x80072321", None, ThrottledError),  # execution time
        (429, "0x80072326", None, ThrottledError),  # concurrency
        (429, None, None, ThrottledError),
        (503, "0x80072322", None, ThrottledError),  # a throttle code wins over the status
        (401, None, None, AuthenticationError),
        (401, "0x8005F101", RECORD, AuthenticationError),  # AccessTokenExpired
        (412, "0x80060882", RECORD, ConcurrencyConflict),  # ConcurrencyVersionMismatch
        (404, "0x80040217", RECORD, RecordError),  # ObjectDoesNotExist
        (412, "0x80040237", RECORD, RecordError),  # DuplicateRecord (alternate key clash)
        (500, "0x80040333", RECORD, RecordError),  # duplicate detection rule
        (400, "0x80044331", RECORD, RecordError),  # validation
        (400, "0x80040265", RECORD, RecordError),  # plug-in
        (413, None, RECORD, RecordError),
        (404, "0x80040217", None, ApiRequestError),  # not about a record: the request is wrong
        (400, "0x80040203", None, ApiRequestError),
        (403, "0x80040220", RECORD, ApiRequestError),  # privilege: fix the security role
        (405, None, None, ApiRequestError),
        (500, None, RECORD, TransientServiceError),
        (500, "0x80040216", None, TransientServiceError),
        (502, None, None, TransientServiceError),
        (503, None, None, TransientServiceError),
        (504, None, None, TransientServiceError),
        (408, None, None, TransientServiceError),
    ],
)
def test_mapping_table(
    status: int, code: str | None, record: RecordRef | None, expected: type[DmsyncError]
) -> None:
    """Each status/code pair maps to its class; code and status are kept on the error."""
    error = map_error(
        status, ODataError(code, "it failed"), action="upsert of contacts(x)", record=record
    )
    assert type(error) is expected
    assert error.status == status
    assert error.code == code
    assert error.system == "dynamics"
    assert "upsert of contacts(x)" in error.message
    if isinstance(error, RecordError):
        assert error.record == record


def test_throttle_keeps_retry_after() -> None:
    """The server's wait travels with the error."""
    error = map_error(429, ODataError(None, None), action="read", retry_after=12.0)
    assert isinstance(error, ThrottledError)
    assert error.retry_after == 12.0


def test_message_is_truncated_and_names_the_request() -> None:
    """A long service message is cut; the request id is kept for support."""
    error = map_error(
        400, ODataError("0x1", "x" * 5000), action="read of contacts", request_id="req-9"
    )
    assert len(error.message) < 400
    assert error.message.startswith("Dataverse read of contacts failed: xxx")
    assert "[request req-9]" in error.message
    assert "…" in error.message


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0x80044352", "0x80044352"),
        ("0x8005f101", "0x8005F101"),
        ("-2147204270", "0x80044352"),
        (-2147015902, "0x80072322"),
        ("", None),
        (None, None),
        ("SomethingElse", "SomethingElse"),
    ],
)
def test_codes_are_normalised(raw: object, expected: str | None) -> None:
    """Hex and signed-decimal codes compare equal after normalising."""
    assert normalize_code(raw) == expected


def test_error_bodies() -> None:
    """OData bodies are read; other bodies give their text or nothing."""
    assert parse_error_body(b'{"error":{"code":"0x80040217","message":"gone"}}') == ODataError(
        "0x80040217", "gone"
    )
    assert parse_error_body(b"<html>Bad gateway</html>") == ODataError(
        None, "<html>Bad gateway</html>"
    )
    assert parse_error_body(b"") == ODataError(None, None)
    assert parse_error_body(b'{"value":[]}') == ODataError(None, None)
