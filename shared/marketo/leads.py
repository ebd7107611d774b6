"""Leads: sync (create/update), get by filter or id, delete, describe (reference B.4)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

from shared.marketo.models import LeadField, Page, RecordOutcome, SyncAction
from shared.marketo.queries import collect_items, iterate_filter_query
from shared.marketo.transport import DEFAULT_TIMEOUT, MarketoTransport
from shared.marketo.writes import write_records

SYNC_TIMEOUT = 90.0
"""Sync Leads server time limit (DEV leads.md "Timeouts")."""
QUERY_TIMEOUT = 60.0
"""Get Leads by Filter Type server time limit."""


class LeadsApi:
    """The lead endpoints of one Marketo instance."""

    def __init__(self, transport: MarketoTransport) -> None:
        self._transport = transport

    async def sync(
        self,
        records: Sequence[Mapping[str, Any]],
        *,
        action: SyncAction = "createOrUpdate",
        lookup_field: str = "email",
        partition_name: str | None = None,
        answered: Callable[[RecordOutcome], None] | None = None,
    ) -> list[RecordOutcome]:
        """Create and/or update leads; one outcome per record, in input order.

        Args:
            records: lead records keyed by REST API field name.
            action: ``createOrUpdate`` (Marketo's default), ``createOnly``, ``updateOnly`` or
                ``createDuplicate``.
            lookup_field: the dedupe key; ``id`` is allowed only with ``updateOnly``.
            partition_name: only for ``createOnly`` / ``createOrUpdate``.
        """
        if lookup_field == "id" and action != "updateOnly":
            raise ValueError("lookup_field 'id' is only allowed with action 'updateOnly'")
        if partition_name is not None and action not in ("createOnly", "createOrUpdate"):
            raise ValueError("partition_name only works with createOnly or createOrUpdate")
        envelope: dict[str, Any] = {"action": action, "lookupField": lookup_field}
        if partition_name is not None:
            envelope["partitionName"] = partition_name
        return await write_records(
            self._transport,
            "/rest/v1/leads.json",
            records,
            envelope=envelope,
            endpoint="leads.sync",
            server_timeout=SYNC_TIMEOUT,
            answered=answered,
        )

    def iter_by_filter(
        self,
        filter_type: str,
        values: Sequence[str | int],
        *,
        fields: Sequence[str] | None = None,
        batch_size: int = 300,
    ) -> AsyncIterator[Page[dict[str, Any]]]:
        """Pages of leads whose ``filter_type`` field equals any of ``values``.

        Values go 300 to a call; each call is paged by ``nextPageToken``. Marketo refuses a
        filter matching more than 1,000 leads with 1003 (raised as ApiRequestError).
        """
        return iterate_filter_query(
            self._transport,
            "/rest/v1/leads.json",
            filter_type,
            values,
            fields=fields,
            batch_size=batch_size,
            endpoint="leads.query",
            server_timeout=QUERY_TIMEOUT,
        )

    async def get_by_filter(
        self,
        filter_type: str,
        values: Sequence[str | int],
        *,
        fields: Sequence[str] | None = None,
        batch_size: int = 300,
    ) -> list[dict[str, Any]]:
        """Every lead :meth:`iter_by_filter` yields, as one list."""
        return await collect_items(
            self.iter_by_filter(filter_type, values, fields=fields, batch_size=batch_size)
        )

    async def get_by_id(
        self, lead_id: int, *, fields: Sequence[str] | None = None
    ) -> dict[str, Any] | None:
        """One lead, or ``None`` if there is no lead with that id."""
        body = await self._transport.call(
            "GET",
            f"/rest/v1/lead/{int(lead_id)}.json",
            endpoint="leads.get",
            params={"fields": ",".join(fields) if fields else None},
            server_timeout=DEFAULT_TIMEOUT,
        )
        result = body.get("result") or []
        return result[0] if result and isinstance(result[0], dict) else None

    async def delete(self, lead_ids: Sequence[int]) -> list[RecordOutcome]:
        """Delete leads by id; one outcome per id, in input order."""
        return await write_records(
            self._transport,
            "/rest/v1/leads/delete.json",
            [{"id": int(i)} for i in lead_ids],
            envelope={},
            endpoint="leads.delete",
            server_timeout=DEFAULT_TIMEOUT,
        )

    async def describe(self) -> list[LeadField]:
        """Every lead field with its REST name, type and length (for validating mappings)."""
        body = await self._transport.call(
            "GET", "/rest/v1/leads/describe.json", endpoint="leads.describe"
        )
        return [LeadField.model_validate(f) for f in body.get("result") or []]
