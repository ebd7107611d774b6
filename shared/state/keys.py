"""Reversible, order-preserving encoding of arbitrary text into Azure Table keys.

PartitionKey and RowKey may not contain ``/ \\ # ?`` or the control characters U+0000–U+001F and
U+007F–U+009F, and are limited to 1 KiB (reference §8; Azurite's ``validateKey`` uses exactly
that character set and counts 1,024 UTF-16 units). Record ids and e-mail addresses come from
outside, so every key component goes through :func:`encode_component`.

The scheme
----------
Most printable ASCII stands for itself. Everything else belongs to one of five *escape ranges*
of consecutive code points; a character in a range is written as the range's *lead* character
(itself a member of the range) followed by the character's offset from the start of the range:

==============  ====  ===============================================================
range           lead  offset
==============  ====  ===============================================================
U+0000–U+002C   ``$`` two hex digits: controls, space and ``!"#$%&'()*+,``
``.`` ``/``     ``.`` one hex digit (``.`` → ``.0``, ``/`` → ``.1``)
``>`` ``?``     ``>`` one hex digit
``[`` ``\\``    ``[`` one hex digit
U+007E–max      ``~`` one digit *n* (1–6), then *n* hex digits without leading zeros
==============  ====  ===============================================================

Why this shape:

* **Valid**: the output is printable ASCII without ``/ \\ # ? '`` or ``%`` (the last two are
  escaped too, so keys never need quoting in a filter or URL), whatever the input, including
  lone surrogates, which cannot even be sent as UTF-8.
* **Reversible**: each character has exactly one encoding and the code is prefix-free, so
  :func:`decode_component` recovers the input and rejects anything that is not canonical.
* **Order-preserving**: a range is contiguous and contains its lead, and offsets are
  fixed-width (or length-prefixed) hex, so ``a < b`` (code point order) exactly when
  ``encode(a) < encode(b)``. The output is ASCII, so the service's ordering (ordinal, whether
  by UTF-16 unit or byte) agrees with Python's. Prefix queries and range scans therefore work
  on encoded keys.
* **Readable**: GUIDs, integer ids, entity names and most e-mail addresses stay legible
  (``jane.doe+x@contoso.com`` → ``jane.0doe$2bx@contoso.0com``).

Composite keys join encoded components with ``!`` (:data:`SEPARATOR`). ``!`` never occurs in an
encoded component and sorts below every character that does, so composite keys sort like the
tuples they encode and ``join_key(*prefix) + SEPARATOR`` is a sound range-scan prefix.

Keys are limited to :data:`MAX_KEY_LENGTH` characters: 512, so that the 1 KiB limit holds whether
the service counts UTF-16 bytes or characters. Longer keys raise :class:`InvalidKeyError`; any
component of up to 64 characters always fits (the worst character takes 8).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from shared.errors import FatalError

MAX_KEY_LENGTH = 512
"""Longest key we write (ASCII characters; half the service's 1 KiB, see the module docstring)."""

SEPARATOR = "!"
"""Joins encoded components in a composite key; absent from, and below, every encoded character."""

_FORBIDDEN_IN_KEYS = re.compile(r"[\u0000-\u001f\u007f-\u009f/\\#?]")
"""The service's disallowed key characters (reference §8, the same class as Azurite's check)."""

_HEX = "0123456789abcdef"


class InvalidKeyError(FatalError, ValueError):
    """A value cannot be used as (or decoded from) a table key."""


@dataclass(frozen=True)
class _EscapeRange:
    """Consecutive code points ``low..high`` written as ``lead`` + offset."""

    lead: str
    low: int
    high: int
    width: int | None
    """Hex digits of the offset; ``None`` = a length digit then that many digits."""

    def encode(self, code_point: int) -> str:
        offset = code_point - self.low
        if self.width is not None:
            return self.lead + format(offset, f"0{self.width}x")
        digits = format(offset, "x")
        return self.lead + str(len(digits)) + digits


_RANGES: tuple[_EscapeRange, ...] = (
    _EscapeRange("$", 0x00, 0x2C, 2),
    _EscapeRange(".", 0x2E, 0x2F, 1),
    _EscapeRange(">", 0x3E, 0x3F, 1),
    _EscapeRange("[", 0x5B, 0x5C, 1),
    _EscapeRange("~", 0x7E, 0x10FFFF, None),
)
_BY_LEAD = {r.lead: r for r in _RANGES}


def _build_encoding_table() -> list[str]:
    """The encoding of every code point below U+0080 (the tail range is computed)."""
    table: list[str] = []
    for code_point in range(0x80):
        escape = next((r for r in _RANGES if r.low <= code_point <= r.high), None)
        table.append(escape.encode(code_point) if escape else chr(code_point))
    return table


_ASCII_TABLE = _build_encoding_table()
_ASCII_TRANSLATION = {cp: text for cp, text in enumerate(_ASCII_TABLE) if text != chr(cp)}
"""The same table for ``str.translate`` (the ASCII path of every key: GUIDs, ids, names)."""
_LITERALS = frozenset(c for c in _ASCII_TABLE if len(c) == 1)
_TAIL = _RANGES[-1]


def encode_component(value: str) -> str:
    """Encode any text (even with lone surrogates) as one key component.

    Raises:
        InvalidKeyError: if the encoding is longer than :data:`MAX_KEY_LENGTH`.
    """
    if value.isascii():
        encoded = value.translate(_ASCII_TRANSLATION)
    else:
        encoded = "".join(
            [_ASCII_TABLE[ord(c)] if ord(c) < 0x80 else _TAIL.encode(ord(c)) for c in value]
        )
    if len(encoded) > MAX_KEY_LENGTH:
        raise InvalidKeyError(
            f"value of {len(value)} characters is too long for a table key "
            f"({len(encoded)} encoded characters, at most {MAX_KEY_LENGTH})"
        )
    return encoded


def decode_component(encoded: str) -> str:
    """Invert :func:`encode_component`.

    Raises:
        InvalidKeyError: if ``encoded`` is not the canonical encoding of any text.
    """
    out: list[str] = []
    i = 0
    while i < len(encoded):
        char = encoded[i]
        escape = _BY_LEAD.get(char)
        if escape is None:
            if char not in _LITERALS:
                raise InvalidKeyError(f"character {char!r} cannot occur in an encoded key")
            out.append(char)
            i += 1
            continue
        width = escape.width
        start = i + 1
        if width is None:  # length digit, then digits without leading zeros
            if start >= len(encoded) or encoded[start] not in "123456":
                raise InvalidKeyError("malformed escape in encoded key")
            width = int(encoded[start])
            start += 1
        digits = encoded[start : start + width]
        if len(digits) != width or any(d not in _HEX for d in digits):
            raise InvalidKeyError("truncated or non-hex escape in encoded key")
        if escape.width is None and width > 1 and digits[0] == "0":
            raise InvalidKeyError("non-canonical escape in encoded key")
        code_point = escape.low + int(digits, 16)
        if code_point > escape.high:
            raise InvalidKeyError("escape out of range in encoded key")
        out.append(chr(code_point))
        i = start + width
    return "".join(out)


def join_key(*parts: str) -> str:
    """Encode each part and join them with :data:`SEPARATOR` (tuple order is preserved).

    Raises:
        InvalidKeyError: if the joined key is longer than :data:`MAX_KEY_LENGTH`.
    """
    key = SEPARATOR.join(encode_component(p) for p in parts)
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidKeyError(
            f"composite key is {len(key)} characters long (at most {MAX_KEY_LENGTH})"
        )
    return key


def split_key(key: str) -> tuple[str, ...]:
    """Decode a key made by :func:`join_key` back into its parts."""
    return tuple(decode_component(part) for part in key.split(SEPARATOR))


def prefix_range(*parts: str) -> tuple[str, str]:
    """``(low, high)`` such that ``low <= key < high`` holds for exactly the keys that
    :func:`join_key` makes from ``parts`` followed by at least one more part."""
    low = join_key(*parts) + SEPARATOR
    # The separator is followed by an encoded character, all of which are above it; the next
    # code point after the separator bounds the range from above.
    return low, low[:-1] + chr(ord(SEPARATOR) + 1)


def is_valid_key(key: str) -> bool:
    """Whether the service accepts ``key`` as a PartitionKey or RowKey (and we do, by length)."""
    return len(key) <= MAX_KEY_LENGTH and _FORBIDDEN_IN_KEYS.search(key) is None
