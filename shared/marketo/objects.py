"""Companies, opportunities, opportunity roles, sales persons and custom objects.

They share one pattern (reference B.6; DEV companies.md, opportunities.md, opportunity-roles.md,
sales-persons.md, custom-objects.md), so one implementation serves them all, parametrised by an
:class:`ObjectType`:

* ``POST /rest/v1/<path>.json`` ``{action, dedupeBy, input}`` → ``{seq, status, id|marketoGUID}``;
* ``GET /rest/v1/<path>.json?filterType=&filterValues=`` (paged), or for compound keys
  ``POST ...?_method=GET`` with ``{filterType:"dedupeFields", input:[{...}]}``;
* ``POST /rest/v1/<path>/delete.json`` ``{deleteBy, input}``; a missing record is skipped, 1013;
* ``GET /rest/v1/<path>/describe.json`` → ``idField``, ``dedupeFields``, ``searchableFields``.

With a native Dynamics or Salesforce sync enabled these APIs are read-only or disabled (1018
"CRM Enabled").
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shared.errors import ApiRequestError
from shared.marketo.models import DedupeBy, ObjectDescription, ObjectSyncAction, Page, RecordOutcome
from shared.marketo.paging import iterate_pages, more_result
from shared.marketo.queries import (
    MAX_FILTER_VALUES,
    check_page_size,
    collect_items,
    iterate_filter_query,
)
from shared.marketo.transport import DEFAULT_TIMEOUT, MarketoTransport
from shared.marketo.writes import write_records


@dataclass(frozen=True)
class ObjectType:
    """Where an object type lives and how long Marketo lets its calls run (DEV "Timeouts")."""

    name: str
    """Label used in stats and messages."""
    path: str
    """Below ``/rest/v1/``, without ``.json``."""
    sync_timeout: float = 60.0
    delete_timeout: float = 60.0
    query_timeout: float = DEFAULT_TIMEOUT


COMPANIES = ObjectType("companies", "companies")
OPPORTUNITIES = ObjectType("opportunities", "opportunities")
OPPORTUNITY_ROLES = ObjectType("opportunity_roles", "opportunities/roles")
SALES_PERSONS = ObjectType("sales_persons", "salespersons")

_API_NAME = re.compile(r"^[A-Za-z0-9_]{1,100}$")


def custom_object_type(api_name: str) -> ObjectType:
    """The type for custom object ``api_name`` (letters, digits and underscores only, as
    Marketo requires; checked so a name can never change the request path)."""
    if not _API_NAME.match(api_name):
        raise ValueError("a custom object API name holds only letters, digits and underscores")
    return ObjectType(f"customobjects.{api_name}", f"customobjects/{api_name}", sync_timeout=120.0)


class ObjectsApi:
    """Sync, query, delete and describe for one object type."""

    def __init__(self, transport: MarketoTransport, object_type: ObjectType) -> None:
        self._transport = transport
        self.type = object_type

    def _url(self, suffix: str = "") -> str:
        return f"/rest/v1/{self.type.path}{suffix}.json"

    async def sync(
        self,
        records: Sequence[Mapping[str, Any]],
        *,
        action: ObjectSyncAction = "createOrUpdate",
        dedupe_by: DedupeBy = "dedupeFields",
        answered: Callable[[RecordOutcome], None] | None = None,
    ) -> list[RecordOutcome]:
        """Create and/or update records; one outcome per record, in input order.

        ``dedupe_by="idField"`` (Marketo's id / marketoGUID) is only valid with ``updateOnly``.
        """
        if dedupe_by == "idField" and action != "updateOnly":
            raise ValueError("dedupe_by 'idField' is only allowed with action 'updateOnly'")
        return await write_records(
            self._transport,
            self._url(),
            records,
            envelope={"action": action, "dedupeBy": dedupe_by},
            endpoint=f"{self.type.name}.sync",
            server_timeout=self.type.sync_timeout,
            answered=answered,
        )

    async def delete(
        self, keys: Sequence[Mapping[str, Any]], *, delete_by: DedupeBy = "dedupeFields"
    ) -> list[RecordOutcome]:
        """Delete records named by their dedupe fields (or id field); outcomes in input order."""
        return await write_records(
            self._transport,
            self._url("/delete"),
            keys,
            envelope={"deleteBy": delete_by},
            endpoint=f"{self.type.name}.delete",
            server_timeout=self.type.delete_timeout,
        )

    def iter_by_filter(
        self,
        filter_type: str,
        values: Sequence[str | int],
        *,
        fields: Sequence[str] | None = None,
        batch_size: int = 300,
    ) -> AsyncIterator[Page[dict[str, Any]]]:
        """Pages of records whose ``filter_type`` (a searchable field) matches any value."""
        return iterate_filter_query(
            self._transport,
            self._url(),
            filter_type,
            values,
            fields=fields,
            batch_size=batch_size,
            endpoint=f"{self.type.name}.query",
            server_timeout=self.type.query_timeout,
        )

    async def query(
        self,
        filter_type: str,
        values: Sequence[str | int],
        *,
        fields: Sequence[str] | None = None,
        batch_size: int = 300,
    ) -> list[dict[str, Any]]:
        """Every record :meth:`iter_by_filter` yields, as one list."""
        return await collect_items(
            self.iter_by_filter(filter_type, values, fields=fields, batch_size=batch_size)
        )

    async def query_by_keys(
        self,
        keys: Sequence[Mapping[str, Any]],
        *,
        fields: Sequence[str] | None = None,
        batch_size: int = 300,
    ) -> list[dict[str, Any]]:
        """Records matching compound dedupe keys (e.g. a role's externalOpportunityId, leadId
        and role), asked as ``POST ..?_method=GET`` with the keys in a JSON body."""
        check_page_size(batch_size)
        found: list[dict[str, Any]] = []
        for start in range(0, len(keys), MAX_FILTER_VALUES):
            chunk = [dict(k) for k in keys[start : start + MAX_FILTER_VALUES]]

            async def fetch(
                token: str | None, chunk: list[dict[str, Any]] = chunk
            ) -> Page[dict[str, Any]]:
                body: dict[str, Any] = {
                    "filterType": "dedupeFields",
                    "input": chunk,
                    "batchSize": batch_size,
                }
                if fields:
                    body["fields"] = list(fields)
                if token:
                    body["nextPageToken"] = token
                answer = await self._transport.call(
                    "POST",
                    self._url(),
                    endpoint=f"{self.type.name}.query",
                    params={"_method": "GET"},
                    json_body=body,
                    server_timeout=self.type.query_timeout,
                    idempotent=True,
                )
                items = [r for r in answer.get("result") or [] if isinstance(r, dict)]
                return Page(items, answer.get("nextPageToken"), more_result(answer, items))

            async for page in iterate_pages(fetch, None, what=f"{self.type.name}.query"):
                found.extend(page.items)
        return found

    async def describe(self) -> ObjectDescription:
        """The type's id field, dedupe fields, searchable fields and fields."""
        body = await self._transport.call(
            "GET", self._url("/describe"), endpoint=f"{self.type.name}.describe"
        )
        result = body.get("result") or []
        if not result or not isinstance(result[0], dict):
            raise ApiRequestError(
                f"Marketo {self.type.name}.describe answered no description", system="marketo"
            )
        return ObjectDescription.model_validate(result[0])
