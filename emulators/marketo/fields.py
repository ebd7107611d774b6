"""Field definitions and value validation (field-types.md, leads.md "Describe").

A value written through the API is checked against its field's type and length and normalized to
what a read returns (booleans as JSON booleans, datetimes as ``...Z`` UTC strings). Failures carry
the record-level code the docs give: 1001 for a type mismatch.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from emulators.marketo.config import CustomField

STRING_LIKE = frozenset({"string", "text", "email", "phone", "url"})
"""Types whose values are strings; lookups and filters on them ignore case."""
TEXT_MAX_BYTES = 30_000  # field-types.md: "Text area ... Supports up to 30,000 bytes"
_EMAIL = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})


@dataclass(frozen=True, slots=True)
class FieldDef:
    """One field of an object type, as its describe call reports it."""

    id: int
    name: str
    display_name: str
    data_type: str
    length: int | None = None
    updateable: bool = True
    """Writable through the REST API (describe's ``rest.readOnly`` is the negation)."""
    searchable: bool = False
    custom: bool = False
    company_field: bool = False
    """A lead field that lives on the linked company record (companies.md)."""


class FieldValueError(Exception):
    """A value that does not fit its field; ``code``/``message`` become a skip reason."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def custom_field_def(field_id: int, spec: CustomField) -> FieldDef:
    """A :class:`FieldDef` for a configured custom field."""
    length = spec.length
    if length is None and spec.data_type in ("string", "email", "phone", "url"):
        length = 255
    searchable = spec.searchable
    if searchable is None:
        searchable = spec.data_type in ("string", "email", "integer")
    return FieldDef(
        id=field_id,
        name=spec.name,
        display_name=spec.display_name or spec.name,
        data_type=spec.data_type,
        length=length,
        updateable=spec.updateable,
        searchable=searchable,
        custom=True,
    )


def _type_error(value: Any, data_type: str) -> FieldValueError:
    shown = str(value)
    if len(shown) > 64:
        shown = shown[:61] + "..."
    return FieldValueError("1001", f"Invalid value '{shown}'. Required of type '{data_type}'")


def coerce(field: FieldDef, value: Any) -> Any:
    """The stored form of ``value`` for ``field``; ``None`` (or "" for non-strings) clears it.

    Raises:
        FieldValueError: 1001 when the value does not fit the type or is too long.
    """
    if value is None:
        return None
    data_type = field.data_type
    if data_type in STRING_LIKE:
        return _coerce_string(field, value)
    if isinstance(value, str) and value.strip() == "":
        return None
    if data_type == "boolean":
        return _coerce_boolean(value)
    if data_type == "integer":
        return _coerce_integer(value)
    if data_type in ("float", "currency"):
        return _coerce_float(value, data_type)
    if data_type == "date":
        return _coerce_date(value)
    if data_type == "datetime":
        return _coerce_datetime(value)
    raise _type_error(value, data_type)  # pragma: no cover - every configured type is handled


def _coerce_string(field: FieldDef, value: Any) -> str | None:
    if isinstance(value, bool | dict | list):
        raise _type_error(value, field.data_type)
    if isinstance(value, int | float):
        value = format(value, "g") if isinstance(value, float) else str(value)
    if not isinstance(value, str):
        raise _type_error(value, field.data_type)
    if field.data_type == "email":
        if value == "":
            return None
        # leads.md: "only ASCII characters are supported in the email address field".
        if not value.isascii() or not _EMAIL.match(value) or len(value) > (field.length or 255):
            raise _type_error(value, "email")
        return value
    if field.data_type == "text":
        if len(value.encode("utf-8")) > TEXT_MAX_BYTES:
            raise FieldValueError(
                "1001",
                f"Invalid value for '{field.name}'. Exceeds the maximum of {TEXT_MAX_BYTES} bytes",
            )
        return value
    if field.length is not None and len(value) > field.length:
        raise FieldValueError(
            "1001",
            f"Invalid value for '{field.name}'. Exceeds the maximum length of {field.length}",
        )
    return value


def _coerce_boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
    raise _type_error(value, "boolean")


def _coerce_integer(value: Any) -> int:
    if isinstance(value, bool):
        raise _type_error(value, "integer")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"[+-]?\d{1,18}", value.strip()):
        return int(value.strip())
    raise _type_error(value, "integer")


def _coerce_float(value: Any, data_type: str) -> float:
    if isinstance(value, bool):
        raise _type_error(value, data_type)
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise _type_error(value, data_type) from None
    else:
        raise _type_error(value, data_type)
    if not math.isfinite(number):
        raise _type_error(value, data_type)
    return number


def _coerce_date(value: Any) -> str:
    if isinstance(value, str):
        text = value.strip()
        if len(text) == 10 or (len(text) > 10 and parse_datetime(text) is not None):
            try:
                return date.fromisoformat(text[:10]).isoformat()
            except ValueError:
                pass
    raise _type_error(value, "date")


def _coerce_datetime(value: Any) -> str:
    if isinstance(value, str):
        parsed = parse_datetime(value)
        if parsed is not None:
            return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    raise _type_error(value, "datetime")


def parse_datetime(text: str) -> datetime | None:
    """An ISO 8601 date or datetime (``Z``, ``+hh:mm`` or ``+hhmm`` offsets); naive means UTC."""
    text = text.strip()
    if not text:
        return None
    if re.search(r"[+-]\d{4}$", text) and "T" in text:
        text = text[:-2] + ":" + text[-2:]
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def lookup_key(field: FieldDef, value: Any) -> Any:
    """The index key of a stored value: strings compare case-insensitively (A.10: GUIDs match
    "case-insensitive"; email dedupe ignores case), other types by value."""
    if isinstance(value, str) and field.data_type in STRING_LIKE:
        return value.lower()
    return value
