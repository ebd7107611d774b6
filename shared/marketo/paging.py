"""Following ``nextPageToken`` until ``moreResult`` is false, with loop detection.

Facts (reference B.5; DEV paging-tokens.md, activities.md): a page may hold fewer items than
``batchSize`` while ``moreResult`` is still true, so only ``moreResult`` ends a feed; a
``nextPageToken`` is always returned and is the watermark to resume from. A token seen before
coming back with ``moreResult:true`` would make us read the same pages forever: that is raised
as :class:`PagingLoopError`, never spun on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, TypeVar

from shared.errors import ApiRequestError
from shared.marketo.models import Page

T = TypeVar("T")


class PagingLoopError(ApiRequestError):
    """Marketo handed back a paging token it had already given, with more results pending."""


class TokenCursor:
    """The position in a paged read; :meth:`advance` decides whether to go on."""

    def __init__(self, start: str | None) -> None:
        self.token = start
        self.pages = 0
        self._seen: set[str] = {start} if start else set()

    def advance(self, next_token: str | None, more_result: bool, *, what: str) -> bool:
        """Move to ``next_token``; True if another page should be read.

        Raises:
            PagingLoopError: more results are promised under a token already used.
            ApiRequestError: more results are promised but no token was given.
        """
        self.pages += 1
        if not more_result:
            if next_token:
                self.token = next_token
            return False
        if not next_token:
            raise ApiRequestError(
                f"Marketo {what}: moreResult is true but no nextPageToken was given",
                system="marketo",
            )
        if next_token in self._seen:
            raise PagingLoopError(
                f"Marketo {what}: nextPageToken repeated with moreResult true after "
                f"{self.pages} pages; stopping instead of reading the same pages again",
                system="marketo",
                code="paging-loop",
            )
        self._seen.add(next_token)
        self.token = next_token
        return True


def more_result(body: Mapping[str, Any], items: list[Any]) -> bool:
    """``moreResult`` when present; otherwise (some query endpoints leave it out) a page that
    came with a token and items is taken to have a successor."""
    if "moreResult" in body:
        return bool(body["moreResult"])
    return bool(body.get("nextPageToken")) and bool(items)


async def iterate_pages(
    fetch: Callable[[str | None], Awaitable[Page[T]]],
    start: str | None,
    *,
    what: str,
    max_pages: int | None = None,
) -> AsyncIterator[Page[T]]:
    """Yield pages from ``fetch(token)`` until ``moreResult`` is false or ``max_pages`` is hit.

    A page is yielded only after its token passed the loop check, so a caller that stores each
    page's ``next_page_token`` as its watermark never stores a looping one.
    """
    cursor = TokenCursor(start)
    while True:
        page = await fetch(cursor.token)
        go_on = cursor.advance(page.next_page_token, page.more_result, what=what)
        yield page
        if not go_on or (max_pages is not None and cursor.pages >= max_pages):
            return
