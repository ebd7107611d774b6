"""Paging tokens (paging-tokens.md): opaque base32 strings like Marketo's.

Date-based tokens (from ``activities/pagingtoken.json``) carry an instant; position-based ones
carry an offset into a result set or the activity log.
"""

from __future__ import annotations

import base64
import binascii

from emulators.marketo.envelope import invalid


def encode(kind: str, value: int) -> str:
    """A token for ``kind`` (``d``: epoch milliseconds, ``a``: activity position, ``o``: offset)."""
    return base64.b32encode(f"{kind}:{value}".encode("ascii")).decode("ascii")


def decode(token: str, kinds: str) -> tuple[str, int]:
    """``(kind, value)`` of a token whose kind is one of ``kinds``.

    Raises:
        ApiError: 1003 for a token this instance did not issue.
    """
    padded = token.strip() + "=" * (-len(token.strip()) % 8)
    try:
        kind, _, value = base64.b32decode(padded.upper()).decode("ascii").partition(":")
        number = int(value)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise invalid(f"Invalid nextPageToken '{token[:64]}'") from None
    if kind not in kinds or number < 0:
        raise invalid(f"Invalid nextPageToken '{token[:64]}'")
    return kind, number
