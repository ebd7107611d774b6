"""Reads by filter (``filterType`` + ≤ 300 ``filterValues``), shared by leads and objects."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any, TypeVar

from shared.marketo.models import Page
from shared.marketo.paging import iterate_pages, more_result
from shared.marketo.transport import MarketoTransport

MAX_FILTER_VALUES = 300
"""``filterValues`` per call (reference B.4)."""
MAX_PAGE_SIZE = 300


def filter_value_chunks(values: Sequence[str | int]) -> list[list[str]]:
    """``values`` as text, in chunks of at most 300.

    Raises:
        ValueError: a value contains a comma; ``filterValues`` is comma-separated, so such a
            value cannot be asked for (Marketo would read it as two values).
    """
    texts = [str(v) for v in values]
    bad = [t for t in texts if "," in t]
    if bad:
        raise ValueError(f"{len(bad)} filter value(s) contain a comma and cannot be queried")
    return [texts[i : i + MAX_FILTER_VALUES] for i in range(0, len(texts), MAX_FILTER_VALUES)]


def check_page_size(batch_size: int) -> None:
    """Marketo pages hold 1 to 300 records."""
    if not 1 <= batch_size <= MAX_PAGE_SIZE:
        raise ValueError(f"batch_size must be between 1 and {MAX_PAGE_SIZE}")


async def iterate_filter_query(
    transport: MarketoTransport,
    path: str,
    filter_type: str,
    values: Sequence[str | int],
    *,
    fields: Sequence[str] | None,
    batch_size: int,
    endpoint: str,
    server_timeout: float,
) -> AsyncIterator[Page[dict[str, Any]]]:
    """Every page of records matching any of ``values``, chunk after chunk.

    A GET whose URI would pass 8 KB (300 GUIDs do) is sent by the transport as POST
    ``_method=GET`` (reference B.2), transparently.
    """
    check_page_size(batch_size)
    if not filter_type:
        raise ValueError("filter_type must not be empty")
    for chunk in filter_value_chunks(values):

        async def fetch(token: str | None, chunk: list[str] = chunk) -> Page[dict[str, Any]]:
            body = await transport.call(
                "GET",
                path,
                endpoint=endpoint,
                params={
                    "filterType": filter_type,
                    "filterValues": ",".join(chunk),
                    "fields": ",".join(fields) if fields else None,
                    "batchSize": batch_size,
                    "nextPageToken": token,
                },
                server_timeout=server_timeout,
            )
            items = [r for r in body.get("result") or [] if isinstance(r, dict)]
            return Page(items, body.get("nextPageToken"), more_result(body, items))

        async for page in iterate_pages(fetch, None, what=endpoint):
            yield page


T = TypeVar("T")


async def collect_items(pages: AsyncIterator[Page[T]]) -> list[T]:
    """Every item of every page, as one list."""
    found: list[T] = []
    async for page in pages:
        found.extend(page.items)
    return found
