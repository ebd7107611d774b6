"""OData v4 text for Dataverse: literals, ``$filter`` expressions, key segments and query strings.

Everything a caller's value can reach goes through :func:`literal`, so a value can never change
the shape of a query: a string is quoted and its quotes doubled (``O'Brien`` → ``'O''Brien'``),
then the whole option is percent-encoded so ``&``, ``#``, ``+`` and ``%`` stay inside it. Names
(columns, tables) are not quoted in OData, so they are checked against an identifier pattern
instead and rejected when they do not match.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TypeAlias
from urllib.parse import quote

ODataValue: TypeAlias = str | bool | int | float | Decimal | uuid.UUID | datetime | date | None
"""A Python value that has an OData literal form."""

KeyValue: TypeAlias = str | int | Decimal | uuid.UUID | datetime | date
"""A value allowed in an alternate key (string, number, date time, lookup id, option set)."""

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")

# Dataverse cannot address a record by an alternate-key string holding any of these characters:
# GET, PATCH and upsert by such a key fail (PAD define-alternate-keys-entity.md, "Unicode
# characters in key value"). We refuse them before sending rather than get a confusing 404.
KEY_UNSUPPORTED_CHARACTERS = frozenset("/<>*%&:\\?+")

# What may stay unencoded inside a query option value. Everything else, notably & = + # % and
# spaces, is percent-encoded so it cannot end the option or be read as another character.
_QUERY_SAFE = "$'(),*:@/"
# Inside a key segment in the path: the quote must stay literal (it delimits the string).
_PATH_SAFE = "'(),="


def identifier(name: str) -> str:
    """Check that ``name`` is a plain OData identifier (a column, table or entity-set name).

    Raises:
        ValueError: ``name`` is empty or has characters an identifier cannot have.
    """
    if not isinstance(name, str) or not _IDENTIFIER.match(name):
        raise ValueError(f"not a valid Dataverse name: {name!r}")
    return name


def string_literal(value: str) -> str:
    """``value`` as an OData string literal: in single quotes, each quote doubled."""
    return "'" + value.replace("'", "''") + "'"


def guid_literal(value: str | uuid.UUID) -> str:
    """A GUID in canonical lower-case form (OData v4 GUID literals are not quoted).

    Raises:
        ValueError: ``value`` is not a GUID.
    """
    if isinstance(value, uuid.UUID):
        return str(value)
    try:
        return str(uuid.UUID(value.strip().strip("{}")))
    except (ValueError, AttributeError):
        raise ValueError(f"not a GUID: {value!r}") from None


def is_guid(value: object) -> bool:
    """True when ``value`` is a UUID or a string holding one."""
    if isinstance(value, uuid.UUID):
        return True
    if not isinstance(value, str):
        return False
    try:
        guid_literal(value)
    except ValueError:
        return False
    return True


def datetime_literal(value: datetime) -> str:
    """A timezone-aware date time as an OData ``DateTimeOffset`` literal in UTC.

    Raises:
        ValueError: ``value`` is naive (its instant would be ambiguous).
    """
    if value.tzinfo is None:
        raise ValueError("a date time used in a query must be timezone-aware")
    utc = value.astimezone(UTC)
    text = utc.isoformat(timespec="microseconds" if utc.microsecond else "seconds")
    return text.replace("+00:00", "Z")


def literal(value: ODataValue) -> str:
    """Any supported Python value as its OData literal.

    Raises:
        ValueError: the value has no OData literal (NaN, infinity, naive date time, other types).
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("NaN and infinity have no OData literal")
        return repr(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError("NaN and infinity have no OData literal")
        return format(value, "f")
    if isinstance(value, uuid.UUID):
        return guid_literal(value)
    if isinstance(value, datetime):
        return datetime_literal(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        return string_literal(value)
    raise ValueError(f"no OData literal for a value of type {type(value).__name__}")


# --- $filter ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Filter:
    """A ``$filter`` expression built only from checked names and escaped literals.

    Combine with ``&`` (and), ``|`` (or) and ``~`` (not); each operand is parenthesised so
    precedence never depends on how the pieces were written.
    """

    text: str

    def __and__(self, other: Filter) -> Filter:
        return Filter(f"({self.text}) and ({other.text})")

    def __or__(self, other: Filter) -> Filter:
        return Filter(f"({self.text}) or ({other.text})")

    def __invert__(self) -> Filter:
        return Filter(f"not ({self.text})")

    def __str__(self) -> str:
        return self.text


def _compare(operator: str, column: str, value: ODataValue) -> Filter:
    return Filter(f"{identifier(column)} {operator} {literal(value)}")


def eq(column: str, value: ODataValue) -> Filter:
    """``column eq value``."""
    return _compare("eq", column, value)


def ne(column: str, value: ODataValue) -> Filter:
    """``column ne value``."""
    return _compare("ne", column, value)


def gt(column: str, value: ODataValue) -> Filter:
    """``column gt value``."""
    return _compare("gt", column, value)


def ge(column: str, value: ODataValue) -> Filter:
    """``column ge value``."""
    return _compare("ge", column, value)


def lt(column: str, value: ODataValue) -> Filter:
    """``column lt value``."""
    return _compare("lt", column, value)


def le(column: str, value: ODataValue) -> Filter:
    """``column le value``."""
    return _compare("le", column, value)


def contains(column: str, text: str) -> Filter:
    """``contains(column, 'text')``."""
    return Filter(f"contains({identifier(column)},{string_literal(text)})")


def startswith(column: str, text: str) -> Filter:
    """``startswith(column, 'text')``."""
    return Filter(f"startswith({identifier(column)},{string_literal(text)})")


def all_of(*filters: Filter) -> Filter:
    """Every filter holds (``and``)."""
    if not filters:
        raise ValueError("all_of needs at least one filter")
    return Filter(" and ".join(f"({f.text})" for f in filters))


def any_of(*filters: Filter) -> Filter:
    """At least one filter holds (``or``)."""
    if not filters:
        raise ValueError("any_of needs at least one filter")
    return Filter(" or ".join(f"({f.text})" for f in filters))


def one_of(column: str, values: Iterable[ODataValue]) -> Filter:
    """``column`` equals one of ``values`` (an ``or`` of ``eq``; portable across OData servers)."""
    return any_of(*(eq(column, v) for v in values))


# --- URLs -------------------------------------------------------------------------------------


def encode_query(options: Mapping[str, str]) -> str:
    """A query string from option names and already-built values, each percent-encoded.

    >>> encode_query({"$select": "name,accountid", "$filter": "name eq 'A&B'"})
    "$select=name,accountid&$filter=name%20eq%20'A%26B'"
    """
    return "&".join(
        f"{quote(name, safe='$')}={quote(value, safe=_QUERY_SAFE)}"
        for name, value in options.items()
    )


def key_segment(key: str | uuid.UUID | Mapping[str, KeyValue]) -> str:
    """The ``(...)`` that addresses one record: a GUID, or alternate-key ``name=value`` pairs.

    Alternate keys follow PAD ``use-alternate-key-reference-record.md``:
    ``accounts(accountnumber='ABC123')``, ``contacts(firstname='Joe',emailaddress1='a@b.c')``,
    ``accounts(_primarycontactid_value=<guid>)``. The literal is percent-encoded for the path.

    Raises:
        ValueError: the GUID is malformed, a key name is not an identifier, or a key string holds
            a character Dataverse cannot address (see ``KEY_UNSUPPORTED_CHARACTERS``).
    """
    if isinstance(key, uuid.UUID | str):
        return f"({guid_literal(key)})"
    if not key:
        raise ValueError("an alternate key needs at least one column")
    pairs = []
    for name, value in key.items():
        if isinstance(value, str):
            bad = sorted(set(value) & KEY_UNSUPPORTED_CHARACTERS)
            if bad:
                raise ValueError(
                    f"alternate key {name!r} holds {' '.join(bad)}, which Dataverse cannot "
                    "address by key"
                )
        pairs.append(f"{identifier(name)}={quote(literal(value), safe=_PATH_SAFE)}")
    return "(" + ",".join(pairs) + ")"
