"""Serialising request bodies exactly once, so the size we measure is the size we send."""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

MAX_BODY_BYTES = 1_000_000
"""Marketo refuses a REST body over 1 MB with HTTP 413 (reference B.2). We read "1 MB" as the
decimal million, which leaves a 4.6 % margin should Marketo mean 2^20."""
MAX_BULK_BODY_BYTES = 10_000_000
"""The bulk import file limit, 10 MB (reference B.7), read the same way."""
MAX_URI_CHARS = 8_000
"""Marketo answers 414 to a URI over 8 KB; longer queries are sent as POST ``_method=GET``."""


def _default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal | UUID):
        return str(value)
    raise TypeError(f"a value of type {type(value).__name__} cannot be sent to Marketo as JSON")


def encode_json(value: Any) -> bytes:
    """Compact UTF-8 JSON, with datetimes as ISO 8601 and decimals/UUIDs as strings."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=_default).encode(
        "utf-8"
    )
