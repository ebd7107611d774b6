"""Comparing field values across the two systems, and fingerprinting them.

Dynamics and Marketo spell the same value differently: ``313000.0`` and ``"313000"``, ``True`` and
``"true"``, a datetime and the date a Marketo date field keeps of it. :func:`normalise` gives one
text form; :func:`same_value` compares; :func:`fingerprint` is the short per-field hash the ID
mapping keeps of what was last written (never the value itself: it may be personal data).
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any


def normalise(value: Any) -> str | None:
    """A comparable text form: empty is None, numbers canonical, booleans and dates uniform."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return _number(str(value))
    text = str(value).strip()
    if not text:
        return None
    if text.lower() in ("true", "false"):
        return text.lower()
    number = _number(text)
    if number is not None:
        return number
    return _moment(text) or text


_DECIMAL_SHAPE = re.compile(r"[+-]?(?=\d|\.\d)\d*(\.\d*)?([eE][+-]?\d+)?")
"""The finite numbers ``Decimal`` reads, once it has stripped the text and dropped its
underscores (its own grammar). Checking ASCII text against it first spares the exception
``Decimal`` raises for each name, e-mail or phone number (most fields of most records)."""


def _number(text: str) -> str | None:
    candidate = text.strip().replace("_", "")
    if candidate.isascii() and not _DECIMAL_SHAPE.fullmatch(candidate):
        return None
    try:
        number = Decimal(text)
    except InvalidOperation:
        return None
    if not number.is_finite():
        return None
    return format(number.normalize(), "f")


def _moment(text: str) -> str | None:
    if len(text) < 10 or text[4] != "-" or text[7] != "-":
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if len(text) == 10:
        return moment.date().isoformat()
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    if (moment.hour, moment.minute, moment.second) == (0, 0, 0):
        return moment.date().isoformat()
    return moment.replace(microsecond=0).isoformat()


def parse_moment(value: Any) -> datetime | None:
    """A timestamp (ISO 8601 text or a datetime) as an aware UTC datetime; else ``None``."""
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _is_date(text: str) -> bool:
    return len(text) == 10 and _moment(text) == text


def same_value(expected: Any, actual: Any) -> bool:
    """Whether two values are equal once normalised.

    A Marketo date field keeps only the date of a datetime written to it, so a datetime and a
    date compare by their (UTC) date.
    """
    left, right = normalise(expected), normalise(actual)
    if left == right:
        return True
    if left is None or right is None:
        return False
    if _is_date(left) and _moment(right) is not None:
        return left == right[:10]
    if _is_date(right) and _moment(left) is not None:
        return right == left[:10]
    return False


def _crc(text: str | None) -> str:
    return f"{zlib.crc32((text if text is not None else chr(0)).encode()):08x}"


def fingerprint(value: Any) -> str:
    """A short hash of a value's normal form; a datetime also carries its date's hash
    (``full/date``), so a Marketo date field holding that date still matches."""
    text = normalise(value)
    if text is not None and len(text) > 10 and _moment(text) is not None:
        return f"{_crc(text)}/{_crc(text[:10])}"
    return _crc(text)


def fingerprints(payload: Mapping[str, Any]) -> dict[str, str]:
    """Every field's fingerprint."""
    return {name: fingerprint(value) for name, value in payload.items()}


def changed_since(written: str | None, value: Any) -> bool:
    """Whether ``value`` differs from the value whose fingerprint ``written`` was."""
    if written is None:
        return True
    current = fingerprint(value)
    return current.split("/")[0] != written.split("/")[0]


def holds_written(written: str | None, value: Any) -> bool:
    """Whether the value Marketo holds now is still the one last written (date-tolerant)."""
    if written is None:
        return True
    return _crc(normalise(value)) in written.split("/")
