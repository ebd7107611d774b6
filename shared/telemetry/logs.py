"""Structured, redacted logging for the sync.

* :func:`sync_logger` gives a logger whose records carry ``instance``, ``entity``, ``direction``
  and ``job_id`` as attributes; the OpenTelemetry log handler the Functions worker installs
  turns them into ``customDimensions`` of the ``traces`` table (reference §10).
* :func:`configure_logging` makes every record in the process safe to ship: a log-record factory
  redacts e-mail addresses, bearer tokens, JWTs, secret query/JSON parameters, storage keys and
  any registered secret value from the message, its arguments and exception text, whichever
  library logged it (httpx logs full request URLs at INFO, and Marketo's identity call carries
  ``client_secret`` in the query string). A :class:`RedactionFilter` on the root handlers also
  cleans ``extra`` attributes. It adds no handler, so nothing is emitted twice: in Azure the
  worker owns the only handler that ships logs.
"""

from __future__ import annotations

import logging
import re
import threading
import traceback
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any

from shared.jobs import Direction, SyncJob
from shared.telemetry.names import APP_LOGGER_NAME, Dim

_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9\-._~+/]+=*")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]*")
# Parameter names whose values are redacted (names, not secrets).
_SECRET_NAMES = "|".join(
    (
        "client_secret",
        "access_token",
        "refresh_token",
        "id_token",
        "password",
        "passwd",
        "secret",
        "api_key",
        "apikey",
        "sig",
        "client_assertion",
        "assertion",
        "code_verifier",
    )
)
# name=value in URLs, form bodies and connection-string-like text.
_SECRET_PARAM = re.compile(rf"(?i)\b({_SECRET_NAMES})=([^&\s;\"',]+)")
# "name": "value" in JSON and 'name': 'value' in Python reprs.
_SECRET_FIELD = re.compile(rf"(?i)([\"']({_SECRET_NAMES})[\"']\s*:\s*[\"'])([^\"']*)([\"'])")
_STORAGE_KEY = re.compile(r"(?i)\b(AccountKey|SharedAccessKey|SharedAccessSignature)=([^;\s]+)")

REDACTED = "[redacted]"
REDACTED_EMAIL = "[email]"

# Attributes every LogRecord has; anything else on a record came from ``extra``.
_STANDARD_ATTRIBUTES = frozenset(
    logging.LogRecord("", logging.INFO, "", 0, "", (), None).__dict__
) | {"message", "asctime"}

# Third-party loggers that log request details (URLs, headers) at INFO: WARNING and up only.
NOISY_LOGGERS = ("azure", "httpx", "httpcore", "urllib3", "msal")


class Redactor:
    """Removes personal data and secrets from text.

    Args:
        secrets: literal values to hide wherever they appear (client secrets from settings).
    """

    _MIN_SECRET_LENGTH = 4  # shorter values would blank out ordinary words

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._secrets: tuple[str, ...] = ()
        for value in secrets:
            self.add_secret(value)

    def add_secret(self, value: str) -> None:
        """Hide ``value`` from now on (values shorter than 4 characters are ignored)."""
        if len(value) < self._MIN_SECRET_LENGTH:
            return
        with self._lock:
            if value not in self._secrets:
                # Longest first, so a secret containing another is replaced whole.
                self._secrets = tuple(sorted((*self._secrets, value), key=len, reverse=True))

    def redact(self, text: str) -> str:
        """``text`` with secrets, tokens and e-mail addresses replaced by placeholders."""
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        text = _STORAGE_KEY.sub(rf"\1={REDACTED}", text)
        text = _SECRET_PARAM.sub(rf"\1={REDACTED}", text)
        text = _SECRET_FIELD.sub(rf"\1{REDACTED}\4", text)
        text = _BEARER.sub(rf"\1 {REDACTED}", text)
        text = _JWT.sub(REDACTED, text)
        return _EMAIL.sub(REDACTED_EMAIL, text)

    def redact_message(self, record: logging.LogRecord) -> None:
        """Redact a record's message, arguments, stack and exception in place."""
        if record.args or isinstance(record.msg, str):
            try:
                message = record.getMessage()
            except (TypeError, ValueError):  # a bad format: logging reports it later
                message = None
            if message is not None:
                clean = self.redact(message)
                if clean != message:
                    record.msg, record.args = clean, None
        elif self.redact(str(record.msg)) != str(record.msg):
            record.msg = self.redact(str(record.msg))
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        if record.exc_info and record.exc_info[1] is not None:
            clean_exc = self._redacted_exception(record.exc_info[1])
            if clean_exc is not None:
                record.exc_info = (type(clean_exc), clean_exc, clean_exc.__traceback__)
                record.exc_text = None

    def redact_extra(self, record: logging.LogRecord) -> None:
        """Redact string attributes a caller added through ``extra``."""
        for name, value in list(record.__dict__.items()):
            if name not in _STANDARD_ATTRIBUTES and isinstance(value, str):
                record.__dict__[name] = self.redact(value)

    def _redacted_exception(self, exc: BaseException) -> BaseException | None:
        """A stand-in for ``exc`` with redacted messages, or None when nothing needs hiding.

        The stand-in keeps the class name, module, traceback frames and cause chain, so the
        exceptions table still groups by type; only the text changes.
        """
        text = "".join(traceback.format_exception(exc))
        if self.redact(text) == text:
            return None
        return self._stand_in(exc, depth=0)

    def _stand_in(self, exc: BaseException, depth: int) -> BaseException:
        cls = type(exc)
        namespace = {"__module__": cls.__module__, "__qualname__": cls.__qualname__}
        stand_in_type: type[Exception] = type(cls.__name__, (Exception,), namespace)
        stand_in: Exception = stand_in_type(self.redact(str(exc)))
        stand_in.__traceback__ = exc.__traceback__
        stand_in.__suppress_context__ = exc.__suppress_context__
        if depth < 8:  # a bound: cause chains are short, but never trust a cycle
            if exc.__cause__ is not None:
                stand_in.__cause__ = self._stand_in(exc.__cause__, depth + 1)
            elif exc.__context__ is not None and not exc.__suppress_context__:
                stand_in.__context__ = self._stand_in(exc.__context__, depth + 1)
        return stand_in


REDACTOR = Redactor()
"""The process-wide redactor :func:`configure_logging` installs."""

UNREDACTABLE = "[log record withheld: it could not be redacted]"


def _withhold(record: logging.LogRecord) -> None:
    """Blank a record whose redaction failed: never ship what could not be checked."""
    record.msg, record.args = UNREDACTABLE, None
    record.exc_info, record.exc_text, record.stack_info = None, None, None
    for name, value in list(record.__dict__.items()):
        if name not in _STANDARD_ATTRIBUTES and isinstance(value, str):
            record.__dict__[name] = UNREDACTABLE


def redact(text: str) -> str:
    """Redact ``text`` with the process-wide :data:`REDACTOR`."""
    return REDACTOR.redact(text)


class RedactionFilter(logging.Filter):
    """A handler filter that redacts message, exception and ``extra`` attributes; never drops."""

    def __init__(self, redactor: Redactor = REDACTOR) -> None:
        super().__init__()
        self._redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact ``record`` in place and let it through."""
        try:
            self._redactor.redact_message(record)
            self._redactor.redact_extra(record)
        except Exception:  # a logging filter must not raise into the caller
            _withhold(record)
        return True


class _RedactingRecordFactory:
    """Wraps the log-record factory so every record is redacted as it is created."""

    def __init__(self, inner: Any, redactor: Redactor) -> None:
        self.inner = inner
        self.redactor = redactor

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record: logging.LogRecord = self.inner(*args, **kwargs)
        try:
            self.redactor.redact_message(record)
        except Exception:  # logging must not raise into the caller
            _withhold(record)
        return record


def configure_logging(*, secrets: Iterable[str] = (), redactor: Redactor = REDACTOR) -> Redactor:
    """Make every log record of this process safe to ship; idempotent.

    Installs the redacting record factory (once), a :class:`RedactionFilter` on each handler of
    the root logger, and WARNING as the level of :data:`NOISY_LOGGERS`. Adds no handler.

    Args:
        secrets: secret values to hide (e.g. the Marketo client secret from settings).
        redactor: the redactor to install (tests pass their own).

    Returns:
        The redactor in use.
    """
    for value in secrets:
        redactor.add_secret(value)
    factory = logging.getLogRecordFactory()
    if not isinstance(factory, _RedactingRecordFactory):
        logging.setLogRecordFactory(_RedactingRecordFactory(factory, redactor))
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactionFilter) for f in handler.filters):
            handler.addFilter(RedactionFilter(redactor))
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    return redactor


class SyncLogger(logging.LoggerAdapter[logging.Logger]):
    """A logger adapter that puts the stream's context on every record.

    A caller's own ``extra`` is merged in (its keys win), and string values are redacted.
    """

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        """Merge the context into ``extra``."""
        context: dict[str, Any] = dict(self.extra or {})
        context.update(kwargs.get("extra") or {})
        kwargs["extra"] = {
            key: REDACTOR.redact(value) if isinstance(value, str) else value
            for key, value in context.items()
        }
        return msg, kwargs


def sync_logger(
    instance: str,
    entity: str,
    direction: Direction,
    job_id: str,
    *,
    component: str = "sync",
) -> SyncLogger:
    """A logger (``dmsync.<component>``) whose records carry the stream and job.

    >>> log = sync_logger("contoso", "contact", Direction.DYNAMICS_TO_MARKETO, "9f1c")
    >>> log.extra["direction"]
    'd2m'
    """
    context: Mapping[str, object] = {
        Dim.INSTANCE.value: instance,
        Dim.ENTITY.value: entity,
        Dim.DIRECTION.value: Direction(direction).value,
        Dim.JOB_ID.value: job_id,
    }
    return SyncLogger(logging.getLogger(f"{APP_LOGGER_NAME}.{component}"), context)


def job_logger(job: SyncJob, *, component: str = "sync") -> SyncLogger:
    """:func:`sync_logger` for the stream and id of a queue job."""
    return sync_logger(job.instance_id, job.entity, job.direction, job.job_id, component=component)
