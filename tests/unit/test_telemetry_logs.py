"""Structured logs carry the stream and job; no secret or e-mail address reaches a handler."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from shared.errors import RecordError, RecordRef
from shared.jobs import Direction, SyncJob
from shared.telemetry import (
    APP_LOGGER_NAME,
    RedactionFilter,
    Redactor,
    configure_logging,
    job_logger,
    redact,
    sync_logger,
)
from shared.telemetry.logs import NOISY_LOGGERS, REDACTED, REDACTED_EMAIL, UNREDACTABLE

D2M = Direction.DYNAMICS_TO_MARKETO


@pytest.fixture
def clean_logging() -> Iterator[None]:
    """Restore the record factory, root handler filters and logger levels after a test."""
    factory = logging.getLogRecordFactory()
    levels = {name: logging.getLogger(name).level for name in NOISY_LOGGERS}
    yield
    logging.setLogRecordFactory(factory)
    for handler in logging.getLogger().handlers:
        for f in [f for f in handler.filters if isinstance(f, RedactionFilter)]:
            handler.removeFilter(f)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


@pytest.mark.parametrize(
    ("text", "leaked", "kept"),
    [
        (
            "GET /identity/oauth/token?grant_type=client_credentials&client_id=abc"
            "&client_secret=Sup3rS3cret",
            "Sup3rS3cret",
            "client_id=abc",
        ),
        ("Authorization: Bearer abc.DEF-123_xyz", "abc.DEF-123_xyz", "Authorization: Bearer"),
        ('{"access_token":"cdc3:ab","expires_in":3599}', "cdc3:ab", '"expires_in":3599'),
        ("{'client_secret': 'hunter22'}", "hunter22", "client_secret"),
        ("token eyJhbGciOiJSUzI1.eyJzdWIiOiIxMjM0.c2lnbmF0dXJl here", "eyJhbGciOiJSUzI1", "here"),
        ("DefaultEndpointsProtocol=https;AccountKey=abc123==;", "abc123==", "AccountName"[:0]),
        ("lead jane.doe+mkto@contoso.co.uk failed", "jane.doe+mkto@contoso.co.uk", "failed"),
    ],
)
def test_redact_removes_secrets_tokens_and_emails(text: str, leaked: str, kept: str) -> None:
    """Each kind of sensitive value is replaced; the surrounding text stays readable."""
    clean = redact(text)
    assert leaked not in clean
    assert kept in clean
    assert REDACTED in clean or REDACTED_EMAIL in clean


def test_registered_secret_values_are_redacted_anywhere() -> None:
    """A known secret is hidden even where no pattern would find it."""
    redactor = Redactor(secrets=["plain-value-xyz", "ab"])  # too short values are ignored
    assert redactor.redact("echo plain-value-xyz!") == f"echo {REDACTED}!"
    assert redactor.redact("abc") == "abc"


@pytest.mark.usefixtures("clean_logging")
def test_a_record_that_cannot_be_redacted_is_withheld(caplog: pytest.LogCaptureFixture) -> None:
    """If redaction itself fails, the record's text is replaced, never shipped unchecked."""

    class Broken(Redactor):
        def redact(self, text: str) -> str:
            raise RuntimeError("boom")

    configure_logging(redactor=Broken())
    with caplog.at_level(logging.INFO):
        logging.getLogger("x").info("secret=%s", "abc")
    (record,) = caplog.records
    assert record.getMessage() == UNREDACTABLE


def test_sync_logger_records_carry_stream_and_job(caplog: pytest.LogCaptureFixture) -> None:
    """Every record has instance, entity, direction and job_id attributes (customDimensions)."""
    log = sync_logger("contoso", "contact", D2M, "job-1")
    with caplog.at_level(logging.INFO, logger=APP_LOGGER_NAME):
        log.info("wrote %d records", 300, extra={"batch": 3})
    (record,) = caplog.records
    assert record.name == f"{APP_LOGGER_NAME}.sync"
    assert record.getMessage() == "wrote 300 records"
    assert (record.instance, record.entity, record.direction, record.job_id) == (  # type: ignore[attr-defined]
        "contoso",
        "contact",
        "d2m",
        "job-1",
    )
    assert record.batch == 3  # type: ignore[attr-defined]


def test_job_logger_takes_the_context_from_the_queue_job(caplog: pytest.LogCaptureFixture) -> None:
    """A job's instance, entity, direction and id become the record's context."""
    job = SyncJob(instance_id="fabrikam", entity="lead", direction=Direction.MARKETO_TO_DYNAMICS)
    with caplog.at_level(logging.INFO, logger=APP_LOGGER_NAME):
        job_logger(job, component="worker").warning("throttled")
    (record,) = caplog.records
    assert record.name == f"{APP_LOGGER_NAME}.worker"
    assert record.job_id == job.job_id  # type: ignore[attr-defined]
    assert record.direction == "m2d"  # type: ignore[attr-defined]


@pytest.mark.usefixtures("clean_logging")
def test_configured_logging_redacts_every_logger(caplog: pytest.LogCaptureFixture) -> None:
    """Messages, arguments and extras of any logger are redacted before a handler sees them."""
    configure_logging(secrets=["the-marketo-secret"])
    other = logging.getLogger("some.library")
    with caplog.at_level(logging.INFO):
        other.info("HTTP Request: GET %s", "https://x/identity?client_secret=the-marketo-secret")
        other.info("sent to %s", "someone@example.com", extra={"who": "someone@example.com"})
        sync_logger("contoso", "contact", D2M, "j").info("ok", extra={"note": "a@b.example.org"})
    assert "the-marketo-secret" not in caplog.text
    assert "example.com" not in caplog.text
    first, second, third = caplog.records
    assert first.getMessage() == f"HTTP Request: GET https://x/identity?client_secret={REDACTED}"
    assert second.who == REDACTED_EMAIL  # type: ignore[attr-defined]
    assert third.note == REDACTED_EMAIL  # type: ignore[attr-defined]


@pytest.mark.usefixtures("clean_logging")
def test_records_without_sensitive_data_are_left_alone(caplog: pytest.LogCaptureFixture) -> None:
    """Redaction touches only what it must: a clean record keeps its arguments."""
    configure_logging()
    with caplog.at_level(logging.INFO):
        logging.getLogger("x").info("%d records in %s", 5, "contact")
    (record,) = caplog.records
    assert record.args == (5, "contact")


@pytest.mark.usefixtures("clean_logging")
def test_exception_text_is_redacted_but_its_type_kept(caplog: pytest.LogCaptureFixture) -> None:
    """An exception whose message holds an e-mail is logged with the type, not the address."""
    configure_logging()
    # Built at run time: traceback source lines show literals, and real code has none.
    email, token = "@".join(("jane", "contoso.com")), "abcdef" + "123456"
    error = RecordError(f"lead {email} rejected", record=RecordRef(entity="lead"))
    try:
        try:
            raise ValueError(f"token Bearer {token}")
        except ValueError as cause:
            raise error from cause
    except RecordError:
        with caplog.at_level(logging.ERROR):
            logging.getLogger("dmsync.worker").exception("record failed")
    (record,) = caplog.records
    assert record.exc_info is not None
    exc_type, exc, _ = record.exc_info
    assert exc_type is not None and exc_type.__name__ == "RecordError"
    assert "jane@contoso.com" not in str(exc)
    assert "jane@contoso.com" not in caplog.text and "abcdef123456" not in caplog.text
    assert "RecordError" in caplog.text and "ValueError" in caplog.text  # chain and frames kept
    assert "jane@contoso.com" in str(error)  # the caller's own exception is not changed


@pytest.mark.usefixtures("clean_logging")
def test_configure_logging_adds_no_handler_and_is_idempotent() -> None:
    """No duplicate shipping: the worker's handler stays the only one; one factory wrapper."""
    root = logging.getLogger()
    handlers = list(root.handlers)
    configure_logging()
    factory = logging.getLogRecordFactory()
    configure_logging()
    assert root.handlers == handlers
    assert logging.getLogRecordFactory() is factory
    for handler in root.handlers:
        assert sum(isinstance(f, RedactionFilter) for f in handler.filters) == 1
    for name in NOISY_LOGGERS:
        assert logging.getLogger(name).level == logging.WARNING
