"""Reading and writing entity property values the way the table service needs them.

* Integers: the SDK sends a Python ``int`` as Int32 and raises ``TypeError`` at 2**31 (reference
  §8), so counters are always written as Int64 and read back from either form.
* Datetimes: written timezone-aware (the SDK serialises UTC), read back as plain UTC
  ``datetime`` (the SDK returns its own subclass).
* Long text: a string property holds at most 32K UTF-16 code units (64 KiB; reference §8, and
  Azurite rejects ``length > 32768``), so longer text (a Dataverse nextLink, a configuration
  blob) is split over ``name_0 … name_{n-1}`` with the part count in ``name_parts``.
* ``None`` is simply not written (the SDK would skip it anyway), so a missing property reads as
  ``None``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from azure.data.tables import EdmType, EntityProperty

TEXT_PART_UNITS = 32_000
"""UTF-16 code units per stored text part (below the 32,768-unit property limit)."""

MAX_TEXT_PARTS = 8
"""At most this many parts (256,000 units, about 500 KiB: half the 1 MiB entity limit)."""

TRUNCATION_MARK = " …[truncated]"


def int64(value: int) -> EntityProperty:
    """An Int64 property value."""
    return EntityProperty(int(value), EdmType.INT64)


def read_int(entity: Mapping[str, Any], name: str, default: int = 0) -> int:
    """An integer property written as Int32 or Int64; ``default`` when absent."""
    value = entity.get(name)
    if value is None:
        return default
    if isinstance(value, EntityProperty):
        return int(value.value)
    return int(value)


def read_optional_int(entity: Mapping[str, Any], name: str) -> int | None:
    """An integer property, or ``None`` when absent."""
    return None if entity.get(name) is None else read_int(entity, name)


@functools.lru_cache(maxsize=256)
def utc(value: datetime) -> datetime:
    """``value`` as a plain timezone-aware UTC datetime (naive values are refused).

    Cached: the rows of one write share a few timestamps (datetimes are immutable, and equal
    ones are the same instant, so an equal earlier value's result is the same)."""
    if value.tzinfo is None:
        raise ValueError("datetimes stored in tables must be timezone-aware")
    moment = value.astimezone(UTC)
    return datetime(
        moment.year,
        moment.month,
        moment.day,
        moment.hour,
        moment.minute,
        moment.second,
        moment.microsecond,
        tzinfo=UTC,
    )


def read_datetime(entity: Mapping[str, Any], name: str) -> datetime | None:
    """A datetime property as plain UTC, or ``None`` when absent."""
    value = entity.get(name)
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise TypeError(f"property {name} is not a datetime")
    return utc(value)


def read_str(entity: Mapping[str, Any], name: str) -> str | None:
    """A string property, or ``None`` when absent."""
    value = entity.get(name)
    return None if value is None else str(value)


def read_bool(entity: Mapping[str, Any], name: str, default: bool = False) -> bool:
    """A boolean property; ``default`` when absent."""
    value = entity.get(name)
    return default if value is None else bool(value)


def utf16_units(text: str) -> int:
    """Length of ``text`` in UTF-16 code units (what the service's string limit counts)."""
    if text.isascii():
        return len(text)
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def split_text(text: str, units: int = TEXT_PART_UNITS) -> list[str]:
    """Split ``text`` into parts of at most ``units`` UTF-16 code units each, never inside a
    character (a code point outside the BMP takes two units and stays whole)."""
    if units < 2:
        raise ValueError("units must be at least 2")
    if text.isascii():
        return [text[i : i + units] for i in range(0, len(text), units)] or [""]
    parts: list[str] = []
    start, used = 0, 0
    for index, char in enumerate(text):
        width = 2 if ord(char) > 0xFFFF else 1
        if used + width > units:
            parts.append(text[start:index])
            start, used = index, 0
        used += width
    parts.append(text[start:])
    return parts


def write_long_text(
    name: str, text: str | None, *, max_parts: int = MAX_TEXT_PARTS
) -> dict[str, Any]:
    """Properties holding ``text`` split into parts (none at all for ``None``).

    Raises:
        ValueError: if the text needs more than ``max_parts`` parts.
    """
    if text is None:
        return {f"{name}_parts": 0}
    parts = split_text(text)
    if len(parts) > max_parts:
        raise ValueError(
            f"{name} is {utf16_units(text)} UTF-16 units long; at most "
            f"{max_parts * TEXT_PART_UNITS} fit in one table row"
        )
    properties: dict[str, Any] = {f"{name}_parts": len(parts)}
    properties.update({f"{name}_{i}": part for i, part in enumerate(parts)})
    return properties


def read_long_text(entity: Mapping[str, Any], name: str) -> str | None:
    """Reassemble text written by :func:`write_long_text` (``None`` if it was ``None``).

    Raises:
        ValueError: if a part is missing (the row was not written by this module).
    """
    count = read_int(entity, f"{name}_parts", default=0)
    if count == 0:
        return None
    parts: list[str] = []
    for i in range(count):
        part = entity.get(f"{name}_{i}")
        if part is None:
            raise ValueError(f"property {name}_{i} is missing ({count} parts expected)")
        parts.append(str(part))
    return "".join(parts)


def truncate(text: str, max_chars: int) -> str:
    """``text`` cut to at most ``max_chars`` characters, marked when cut."""
    if len(text) <= max_chars:
        return text
    keep = max(0, max_chars - len(TRUNCATION_MARK))
    return text[:keep] + TRUNCATION_MARK
