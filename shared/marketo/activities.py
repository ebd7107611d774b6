"""Change feeds: lead changes and deleted leads, read with date-based paging tokens.

Facts (reference B.5; DEV activities.md, paging-tokens.md):

* ``GET /rest/v1/activities/pagingtoken.json?sinceDatetime=<ISO 8601>`` gives the first token;
* ``GET /rest/v1/activities/leadchanges.json?nextPageToken=&fields=<required>&batchSize<=300``
  returns New Lead (12) and Change Data Value (13) activities; ``leadIds`` (≤ 30) or ``listId``
  narrow it;
* ``GET /rest/v1/activities/deletedleads.json?nextPageToken=`` returns Delete Lead (37);
* a page may be short while ``moreResult`` is true; a token always comes back and is the
  watermark; ``result`` is left out when a page has no activities.

Use the page forms to checkpoint after each page, the ``iter_`` forms to walk a feed, or the
``collect_`` forms for everything since a token plus the token to resume from.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from shared.errors import ApiRequestError
from shared.marketo.models import ChangeFeed, DeletedLead, LeadChange, Page
from shared.marketo.paging import iterate_pages, more_result
from shared.marketo.queries import check_page_size
from shared.marketo.transport import MarketoTransport

MAX_LEAD_IDS = 30
"""``leadIds`` per lead-changes call (reference B.5)."""

M = TypeVar("M", bound=BaseModel)


class ActivitiesApi:
    """The change-feed endpoints of one Marketo instance."""

    def __init__(self, transport: MarketoTransport) -> None:
        self._transport = transport

    async def paging_token(self, since: datetime) -> str:
        """The token that reads activities after ``since`` (must be timezone-aware)."""
        if since.tzinfo is None:
            raise ValueError("since must be timezone-aware")
        body = await self._transport.call(
            "GET",
            "/rest/v1/activities/pagingtoken.json",
            endpoint="activities.pagingtoken",
            params={"sinceDatetime": since.isoformat(timespec="seconds")},
        )
        token = body.get("nextPageToken")
        if not isinstance(token, str) or not token:
            raise ApiRequestError(
                "Marketo activities.pagingtoken answered without a nextPageToken",
                system="marketo",
            )
        return token

    # -- one page

    async def lead_changes_page(
        self,
        token: str,
        fields: Sequence[str],
        *,
        batch_size: int = 300,
        lead_ids: Sequence[int] | None = None,
        list_id: int | None = None,
    ) -> Page[LeadChange]:
        """One page of lead changes after ``token``, for the named ``fields``."""
        if not fields:
            raise ValueError("fields is required by leadchanges.json: name at least one field")
        check_page_size(batch_size)
        if lead_ids is not None and not 1 <= len(lead_ids) <= MAX_LEAD_IDS:
            raise ValueError(f"lead_ids takes 1 to {MAX_LEAD_IDS} ids")
        if lead_ids is not None and list_id is not None:
            raise ValueError("give lead_ids or list_id, not both")
        return await self._page(
            "/rest/v1/activities/leadchanges.json",
            "activities.leadchanges",
            LeadChange,
            {
                "nextPageToken": token,
                "fields": ",".join(fields),
                "batchSize": batch_size,
                "leadIds": ",".join(str(int(i)) for i in lead_ids) if lead_ids else None,
                "listId": list_id,
            },
        )

    async def deleted_leads_page(self, token: str, *, batch_size: int = 300) -> Page[DeletedLead]:
        """One page of deleted leads after ``token``."""
        check_page_size(batch_size)
        return await self._page(
            "/rest/v1/activities/deletedleads.json",
            "activities.deletedleads",
            DeletedLead,
            {"nextPageToken": token, "batchSize": batch_size},
        )

    # -- every page

    def iter_lead_changes(
        self,
        token: str,
        fields: Sequence[str],
        *,
        batch_size: int = 300,
        lead_ids: Sequence[int] | None = None,
        list_id: int | None = None,
        max_pages: int | None = None,
    ) -> AsyncIterator[Page[LeadChange]]:
        """Pages of lead changes from ``token`` until ``moreResult`` is false."""

        async def fetch(current: str | None) -> Page[LeadChange]:
            return await self.lead_changes_page(
                current or token,
                fields,
                batch_size=batch_size,
                lead_ids=lead_ids,
                list_id=list_id,
            )

        return iterate_pages(fetch, token, what="activities.leadchanges", max_pages=max_pages)

    def iter_deleted_leads(
        self, token: str, *, batch_size: int = 300, max_pages: int | None = None
    ) -> AsyncIterator[Page[DeletedLead]]:
        """Pages of deleted leads from ``token`` until ``moreResult`` is false."""

        async def fetch(current: str | None) -> Page[DeletedLead]:
            return await self.deleted_leads_page(current or token, batch_size=batch_size)

        return iterate_pages(fetch, token, what="activities.deletedleads", max_pages=max_pages)

    async def collect_lead_changes(
        self,
        token: str,
        fields: Sequence[str],
        *,
        batch_size: int = 300,
        max_pages: int | None = None,
    ) -> ChangeFeed[LeadChange]:
        """All lead changes after ``token`` and the watermark to resume from."""
        return await _collect(
            self.iter_lead_changes(token, fields, batch_size=batch_size, max_pages=max_pages),
            token,
        )

    async def collect_deleted_leads(
        self, token: str, *, batch_size: int = 300, max_pages: int | None = None
    ) -> ChangeFeed[DeletedLead]:
        """All deleted leads after ``token`` and the watermark to resume from."""
        return await _collect(
            self.iter_deleted_leads(token, batch_size=batch_size, max_pages=max_pages), token
        )

    # -- parsing

    async def _page(
        self, path: str, endpoint: str, model: type[M], params: dict[str, Any]
    ) -> Page[M]:
        body = await self._transport.call("GET", path, endpoint=endpoint, params=params)
        raw = body.get("result") or []
        try:
            items = [model.model_validate(item) for item in raw]
        except ValidationError as exc:
            raise ApiRequestError(
                f"Marketo {endpoint} answered an activity without {_missing(exc)}",
                system="marketo",
            ) from None
        token = body.get("nextPageToken")
        return Page(items, token if isinstance(token, str) else None, more_result(body, items))


def _missing(exc: ValidationError) -> str:
    names = sorted({str(e["loc"][0]) for e in exc.errors() if e.get("loc")})
    return "a valid " + ", ".join(names) if names else "the expected shape"


T = TypeVar("T")


async def _collect(pages: AsyncIterator[Page[T]], start: str) -> ChangeFeed[T]:
    items: list[T] = []
    watermark = start
    count = 0
    async for page in pages:
        items.extend(page.items)
        watermark = page.next_page_token or watermark
        count += 1
    return ChangeFeed(items, watermark, count)
