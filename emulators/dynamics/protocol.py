"""Transport-neutral request/response types and the small parsers every handler shares.

The same handlers serve a top-level HTTP request and a part of a ``$batch``; both arrive as an
:class:`ApiRequest` and leave as an :class:`ApiResponse`.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote

import orjson

from emulators.dynamics.errors import ODataError, bad_request

JSON_CONTENT_TYPE = "application/json; odata.metadata=minimal"
ODATA_HEADERS = {"OData-Version": "4.0"}


@dataclass(frozen=True)
class Principal:
    """Who is calling: the application user the bearer token maps to."""

    client_id: str
    user_id: str


@dataclass
class ApiRequest:
    """One Web API call: ``path`` is the resource path after ``/api/data/v9.2/``, decoded."""

    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    body: bytes
    base_url: str
    principal: Principal
    content_ids: dict[str, str] = field(default_factory=dict)
    """Batch ``Content-ID`` → the URL of the row that part created (``$1`` references)."""
    in_batch: bool = False

    def header(self, name: str) -> str | None:
        """A header by case-insensitive name."""
        return self.headers.get(name.lower())

    @property
    def api_root(self) -> str:
        """``https://host:port/api/data/v9.2``."""
        return f"{self.base_url}/api/data/v9.2"

    def json_body(self) -> dict[str, Any]:
        """The body as a JSON object, or a 400."""
        if not self.body.strip():
            raise bad_request("The request body is empty; a JSON object is required.")
        try:
            parsed = orjson.loads(self.body)
        except orjson.JSONDecodeError as exc:
            raise bad_request(f"The request body is not valid JSON: {exc}") from None
        if not isinstance(parsed, dict):
            raise bad_request("The request body must be a JSON object.")
        return parsed


@dataclass
class ApiResponse:
    """A status, headers and an encoded body."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    @classmethod
    def json(
        cls, status: int, payload: Any, headers: Mapping[str, str] | None = None
    ) -> ApiResponse:
        """A JSON response with the OData content type."""
        merged = {"Content-Type": JSON_CONTENT_TYPE, **ODATA_HEADERS, **(headers or {})}
        return cls(status, merged, orjson.dumps(payload))

    @classmethod
    def empty(cls, status: int, headers: Mapping[str, str] | None = None) -> ApiResponse:
        """A response without a body (204, 304)."""
        return cls(status, {**ODATA_HEADERS, **(headers or {})}, b"")

    @classmethod
    def error(cls, exc: ODataError) -> ApiResponse:
        """The OData error body for ``exc``."""
        return cls.json(exc.status, exc.body(), {"REQ_ID": str(uuid.uuid4()), **exc.headers})


# --- Prefer ------------------------------------------------------------------------------------


@dataclass
class Preferences:
    """The parsed ``Prefer`` header (RFC 7240), as the Web API uses it."""

    track_changes: bool = False
    max_page_size: int | None = None
    include_annotations: str | None = None
    return_representation: bool = False
    continue_on_error: bool = False


def parse_prefer(values: str | None) -> Preferences:
    """Parse one or more comma-separated preferences; quoted values may contain commas."""
    prefs = Preferences()
    if not values:
        return prefs
    for item in _split_outside_quotes(values, ","):
        name, _, raw = item.strip().partition("=")
        name = name.strip().lower()
        value = raw.strip().strip('"')
        if name == "odata.track-changes":
            prefs.track_changes = True
        elif name == "odata.maxpagesize":
            try:
                prefs.max_page_size = int(value)
            except ValueError:
                raise bad_request(f"Invalid odata.maxpagesize preference '{value}'.") from None
            if prefs.max_page_size < 1:
                raise bad_request("odata.maxpagesize must be a positive integer.")
        elif name == "odata.include-annotations":
            prefs.include_annotations = value
        elif name == "return" and value == "representation":
            prefs.return_representation = True
        elif name == "odata.continue-on-error":
            prefs.continue_on_error = True
    return prefs


def _split_outside_quotes(text: str, separator: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for char in text:
        if char == '"':
            quoted = not quoted
        if char == separator and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [p for p in parts if p.strip()]


# --- query string --------------------------------------------------------------------------------


def parse_query(query: str) -> dict[str, str]:
    """Query options by name; a repeated option is a 400 (OData forbids it)."""
    options: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name in options:
            raise bad_request(f"Query option '{name}' was specified more than once.")
        options[name] = value
    return options


# --- resource paths -------------------------------------------------------------------------------

_SEGMENT = re.compile(r"^(?P<name>[A-Za-z_$][\w.$]*)(?:\((?P<key>.*)\))?$", re.DOTALL)


@dataclass(frozen=True)
class ResourcePath:
    """``name``, an optional parenthesised key, and what follows (``$count``, ``Attributes``)."""

    name: str
    key: str | None
    rest: tuple[str, ...]


def parse_path(path: str) -> ResourcePath:
    """Split ``accounts(…)/$count`` into its parts; keys may contain quoted slashes."""
    path = path.strip("/")
    depth, quoted, cut = 0, False, len(path)
    for index, char in enumerate(path):
        if char == "'":
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")":
            depth -= 1
        elif not quoted and depth == 0 and char == "/":
            cut = index
            break
    head, tail = path[:cut], path[cut + 1 :]
    match = _SEGMENT.match(head)
    if match is None:
        raise bad_request(f"The request URI '{path}' is not valid.")
    rest = tuple(unquote(part) for part in tail.split("/") if part) if tail else ()
    return ResourcePath(match.group("name"), match.group("key"), rest)


def parse_key(key: str) -> str | dict[str, Any]:
    """A key in parentheses: a bare GUID, or ``name=value`` pairs (alternate keys)."""
    key = unquote(key).strip()
    if _GUID.fullmatch(key):
        return key.lower()
    return _parse_pairs(key)


_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_PAIR = re.compile(r"\s*(?P<name>[A-Za-z_][\w]*)\s*=\s*(?P<value>'(?:[^']|'')*'|[^,]+?)\s*(?:,|$)")


def _parse_pairs(key: str) -> dict[str, Any]:
    pairs: dict[str, Any] = {}
    position = 0
    while position < len(key):
        match = _PAIR.match(key, position)
        if match is None or match.end() == position:
            raise bad_request(f"The key '{key}' is not a valid key predicate.")
        raw = match.group("value").strip()
        pairs[match.group("name")] = _key_literal(raw)
        position = match.end()
    return pairs


def _key_literal(raw: str) -> Any:
    if raw.startswith("'") and raw.endswith("'") and len(raw) >= 2:
        return raw[1:-1].replace("''", "'")
    if raw in ("true", "false"):
        return raw == "true"
    if raw == "null":
        return None
    if _GUID.fullmatch(raw):
        return raw.lower()
    try:
        return int(raw)
    except ValueError:
        try:
            return float(raw)
        except ValueError:
            raise bad_request(f"The key value '{raw}' is not a valid literal.") from None


def format_key_literal(value: Any) -> str:
    """A key value as it appears in a URL (for ``OData-EntityId`` in key form)."""
    if isinstance(value, str):
        if re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", value):
            return value
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
