"""Paging cookies in the shape the reference shows for ``$skiptoken`` (reference §2):

``<cookie pagenumber="2" pagingcookie="%3ccookie%20page%3d%221%22%3e...%3c%2fcookie%3e"
istracking="False" />``, URL-encoded once more inside ``@odata.nextLink``. The inner cookie
carries what the emulator needs to resume: the last row's primary key (and order-by values), or,
for change tracking, the snapshot version and the last version delivered. Clients must treat it
as opaque (the docs say not to modify nextLinks).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote

import orjson

from emulators.dynamics.errors import bad_request

_OUTER = re.compile(
    r'^<cookie pagenumber="(?P<page>\d+)" pagingcookie="(?P<inner>[^"]*)" '
    r'istracking="(?P<tracking>True|False)" />$'
)
_INNER = re.compile(r'^<cookie page="(?P<page>\d+)"(?P<attrs>[^>]*)>(?P<body>.*)</cookie>$')
_ATTR = re.compile(r'(\w+)="([^"]*)"')
_ELEMENT = re.compile(r'<(?P<name>\w+) last="(?P<last>[^"]*)" first="(?P<first>[^"]*)" />')


@dataclass
class PagingCookie:
    """Where the next page starts."""

    page: int
    """Number of the page this cookie leads to (2 after the first page)."""
    tracking: bool = False
    attrs: dict[str, str] = field(default_factory=dict)
    last: dict[str, Any] = field(default_factory=dict)
    """Column → value of the last row delivered (order-by columns, then the primary key)."""
    first: dict[str, Any] = field(default_factory=dict)

    def encode(self) -> str:
        """The ``$skiptoken`` value (not yet URL-encoded for the nextLink)."""
        parts = [f'<cookie page="{self.page - 1}"']
        parts.extend(f' {k}="{quote(v, safe="")}"' for k, v in self.attrs.items())
        parts.append(">")
        for name, value in self.last.items():
            last = quote(orjson.dumps(value).decode(), safe="")
            first = quote(orjson.dumps(self.first.get(name)).decode(), safe="")
            parts.append(f'<{name} last="{last}" first="{first}" />')
        parts.append("</cookie>")
        inner = quote("".join(parts), safe="")
        return (
            f'<cookie pagenumber="{self.page}" pagingcookie="{inner}" '
            f'istracking="{"True" if self.tracking else "False"}" />'
        )

    @classmethod
    def decode(cls, token: str) -> PagingCookie:
        """Parse a ``$skiptoken``; a token we did not issue is a 400."""
        outer = _OUTER.match(token.strip())
        if outer is None:
            raise bad_request("The $skiptoken value is not a valid paging cookie.")
        inner_text = unquote(outer.group("inner"))
        inner = _INNER.match(inner_text)
        if inner is None:
            raise bad_request("The $skiptoken paging cookie is malformed.")
        attrs = {k: unquote(v) for k, v in _ATTR.findall(inner.group("attrs"))}
        last: dict[str, Any] = {}
        first: dict[str, Any] = {}
        try:
            for element in _ELEMENT.finditer(inner.group("body")):
                last[element.group("name")] = orjson.loads(unquote(element.group("last")))
                first[element.group("name")] = orjson.loads(unquote(element.group("first")))
        except orjson.JSONDecodeError:
            raise bad_request("The $skiptoken paging cookie is malformed.") from None
        return cls(
            page=int(outer.group("page")),
            tracking=outer.group("tracking") == "True",
            attrs=attrs,
            last=last,
            first=first,
        )
