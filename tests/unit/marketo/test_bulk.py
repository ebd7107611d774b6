"""Bulk lead import: safe CSV, files under 10 MB, the multipart upload, polling, problem rows."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import httpx
import pytest

from shared.clock import ManualClock
from shared.errors import ApiRequestError, ThrottledError, TransientServiceError
from shared.marketo.bulk import poll_delays
from shared.marketo.bulk_csv import build_import_files, csv_value, parse_problem_file
from tests.unit.marketo.fakes import FakeMarketo, fail, make_client, ok

TRICKY = [
    {"email": "a@example.com", "firstName": 'Ann "The Hammer"', "company": "Smith, Jones & Co"},
    {"email": "b@example.com", "firstName": "Bob\nNewline", "company": None},
    {"email": "c@example.com", "firstName": "=cmd|' /C calc'!A0", "company": "  spaced  "},
]


def test_csv_quotes_commas_quotes_and_newlines() -> None:
    """Every value reads back exactly through a standard CSV parser."""
    (file,) = build_import_files(TRICKY, ["email", "firstName", "company"])
    rows = list(csv.DictReader(io.StringIO(file.content.decode("utf-8"), newline="")))
    assert rows == [{k: csv_value(v) for k, v in row.items()} for row in TRICKY]
    assert file.rows == range(3)


def test_csv_values() -> None:
    """None is empty, booleans are true/false, datetimes ISO 8601."""
    assert csv_value(None) == ""
    assert csv_value(True) == "true" and csv_value(False) == "false"
    assert csv_value(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2026-01-02T03:04:05+00:00"
    assert csv_value(12) == "12"


def test_files_are_split_under_the_limit_with_a_header_each() -> None:
    """Rows spill into further files, each under the limit, each starting with the header."""
    rows = [{"email": f"p{i}@example.com", "notes": "x" * 200} for i in range(100)]
    files = build_import_files(rows, ["email", "notes"], max_bytes=5_000)
    assert len(files) > 3
    assert all(len(f.content) <= 5_000 for f in files)
    assert all(f.content.startswith(b"email,notes\r\n") for f in files)
    assert [i for f in files for i in f.rows] == list(range(100))


def test_unknown_fields_and_oversized_rows_are_refused() -> None:
    """A key outside the columns would be dropped silently, so it is an error; so is a row
    that cannot fit in any file."""
    with pytest.raises(ValueError, match="not import columns"):
        build_import_files([{"email": "a", "extra": 1}], ["email"])
    with pytest.raises(ValueError, match="alone is larger"):
        build_import_files([{"email": "a" * 100}], ["email"], max_bytes=50)
    with pytest.raises(ValueError, match="unique"):
        build_import_files([], ["email", "email"])


def test_problem_files_parse_with_the_appended_reason() -> None:
    """The last column of a failures file is Marketo's reason."""
    text = 'email,firstName,Import Failure Reason\r\nx@,"A, B",Invalid email\r\n'
    (problem,) = parse_problem_file(text)
    assert problem.row == {"email": "x@", "firstName": "A, B"}
    assert problem.message == "Invalid email"
    assert parse_problem_file("") == []


def test_poll_delays_grow_and_are_bounded() -> None:
    """5 s, then ×1.5 up to 30 s, summing to at most the limit."""
    delays = poll_delays(limit=200)
    assert delays[:4] == [5.0, 7.5, 11.25, 16.875]
    assert max(delays) == 30.0 and sum(delays) <= 200


async def test_import_polls_with_backoff_and_fetches_problems() -> None:
    """Upload (multipart, format=csv, lookupField), poll Queued → Importing → Complete, then
    fetch failures and warnings because the counts say there are some."""
    status = {
        "batchId": 77,
        "importId": "77",
        "numOfLeadsProcessed": 2,
        "numOfRowsFailed": 1,
        "numOfRowsWithWarning": 1,
    }
    fake = (
        FakeMarketo()
        .on(
            "POST",
            "/bulk/v1/leads.json",
            ok([{"batchId": 77, "importId": "77", "status": "Queued"}]),
        )
        .on(
            "GET",
            "/bulk/v1/leads/batch/77.json",
            ok([{**status, "status": "Queued"}]),
            ok([{**status, "status": "Importing"}]),
            ok([{**status, "status": "Complete", "message": "done"}]),
        )
        .on(
            "GET",
            "/bulk/v1/leads/batch/77/failures.json",
            httpx.Response(200, text="email,Reason\r\nbad@,Invalid email\r\n"),
        )
        .on(
            "GET",
            "/bulk/v1/leads/batch/77/warnings.json",
            httpx.Response(200, text="email,Reason\r\nw@example.com,Field truncated\r\n"),
        )
    )
    clock = ManualClock(datetime(2026, 3, 2, 15, 0, tzinfo=UTC))
    async with make_client(fake, clock=clock) as client:
        (result,) = await client.bulk.run(
            TRICKY, ["email", "firstName", "company"], lookup_field="email"
        )
    assert result.status.status == "Complete" and result.status.rows_failed == 1
    assert [p.message for p in result.failures] == ["Invalid email"]
    assert [p.row for p in result.warnings] == [{"email": "w@example.com"}]
    upload = fake.rest_requests()[0]
    assert upload.url.params["format"] == "csv" and upload.url.params["lookupField"] == "email"
    assert upload.headers["Content-Type"].startswith("multipart/form-data")
    content = upload.content
    assert b'name="file"; filename="leads.csv"' in content
    assert b'"Smith, Jones & Co"' in content and b'name="format"' in content
    assert [s for s in clock.sleeps if s >= 1] == [5.0, 7.5]


async def test_import_wait_gives_up_after_its_delays() -> None:
    """A job still running after the last poll raises a retriable error; the batch id stays."""
    fake = FakeMarketo().on(
        "GET", "/bulk/v1/leads/batch/5.json", ok([{"batchId": 5, "status": "Importing"}])
    )
    async with make_client(fake) as client:
        with pytest.raises(TransientServiceError, match="still Importing"):
            await client.bulk.wait(5, delays=[1.0, 1.0])
    assert len(fake.rest_requests()) == 3


async def test_a_full_import_queue_is_a_retriable_error() -> None:
    """1016 (10 imports queued) is ThrottledError: try again later, not now."""
    fake = FakeMarketo().on("POST", "/bulk/v1/leads.json", fail("1016", "Too many imports"))
    async with make_client(fake) as client:
        with pytest.raises(ThrottledError):
            await client.bulk.import_leads(b"email\r\na@example.com\r\n")
    assert len(fake.rest_requests()) == 1


async def test_problem_file_errors_are_still_checked() -> None:
    """A failures download answered with success:false is an error, not a file."""
    fake = FakeMarketo().on("GET", "/bulk/v1/leads/batch/8/failures.json", fail("610"))
    async with make_client(fake) as client:
        with pytest.raises(ApiRequestError, match="610"):
            await client.bulk.failures(8)
