"""Masking secrets in URLs and text before they reach a log line or an error message.

Marketo's identity call carries ``client_id`` and ``client_secret`` in the query string
(reference B.1), and older integrations pass ``access_token`` there too. Anything that prints a
URL goes through :func:`redact_url` first.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

SENSITIVE_PARAMS = frozenset(
    {"client_id", "client_secret", "access_token", "refresh_token", "password", "token"}
)
"""Query parameter names whose values are never shown (compared case-insensitively)."""

MASK = "***"

_INLINE_SECRET = re.compile(
    r"(?i)\b(" + "|".join(sorted(SENSITIVE_PARAMS)) + r")=([^&\s\"']+)",
)
_BEARER = re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._:~+/=-]+")


def redact_url(url: object) -> str:
    """``url`` as text with the values of sensitive query parameters replaced by ``***``."""
    text = str(url)
    parts = urlsplit(text)
    if not parts.query:
        return text
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    masked = [(k, MASK if k.lower() in SENSITIVE_PARAMS else v) for k, v in pairs]
    return urlunsplit(parts._replace(query=urlencode(masked, safe="*")))


def redact_text(text: str) -> str:
    """Free text with ``name=value`` secrets and bearer tokens masked (for server messages)."""
    return _BEARER.sub("Bearer " + MASK, _INLINE_SECRET.sub(r"\1=" + MASK, text))
