"""The engine's two ports implemented over the real clients.

* :class:`DataverseSource` reads pages, rows and identities through
  :class:`~shared.dynamics.client.DynamicsClient`;
* :class:`MarketoTarget` writes through :class:`~shared.marketo.client.MarketoClient`, choosing
  the endpoint, action and dedupe key from the entity's target kind and the write mode.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from shared.dynamics.client import DynamicsClient
from shared.dynamics.models import ChangedRecord, TableRef
from shared.marketo.client import MarketoClient
from shared.marketo.models import RecordOutcome
from shared.marketo.objects import ObjectsApi
from shared.sync.config import SYNC_FILTER_COLUMN, EntitySpec, TargetKind
from shared.sync.ports import (
    SourceIdentity,
    SourcePage,
    WriteMode,
    WriteOutcome,
    WriteStatus,
)
from shared.sync.transform import sync_filter_allows


def table_ref(spec: EntitySpec) -> TableRef:
    """The Dataverse address of an entity."""
    return TableRef(spec.table, spec.entity_set, spec.primary_key)


def _row(record: ChangedRecord, spec: EntitySpec) -> dict[str, Any]:
    row = dict(record.attributes)
    row[spec.primary_key] = record.id
    if record.version is not None:
        row.setdefault("versionnumber", record.version)
    return row


class DataverseSource:
    """The Dynamics side of the engine."""

    def __init__(self, client: DynamicsClient) -> None:
        self.client = client

    async def read_page(self, spec: EntitySpec, link: str | None, page_size: int) -> SourcePage:
        page = await self.client.read_page(
            table_ref(spec),
            spec.dynamics_columns(),
            next_link=link,
            track_changes=True,
            page_size=page_size,
        )
        return SourcePage(
            rows=[_row(r, spec) for r in page.records],
            deleted_ids=list(page.deleted_ids),
            next_link=page.next_link,
            delta_link=page.delta_link,
        )

    async def fetch_rows(self, spec: EntitySpec, ids: Sequence[str]) -> list[dict[str, Any]]:
        if not ids:
            return []
        records = await self.client.read_records(
            table_ref(spec), ids, spec.dynamics_columns(), include_lookup_names=False
        )
        return [_row(r, spec) for r in records]

    async def all_rows(self, spec: EntitySpec) -> list[dict[str, Any]]:
        """Every current row of the table (plain paged reads, no change tracking)."""
        rows: list[dict[str, Any]] = []
        async for page in self.client.iter_pages(
            table_ref(spec), spec.dynamics_columns(), track_changes=False
        ):
            rows.extend(_row(record, spec) for record in page.records)
        return rows

    async def filter_states(self, spec: EntitySpec, ids: Sequence[str]) -> dict[str, bool]:
        if not ids:
            return {}
        columns = [spec.primary_key, *([SYNC_FILTER_COLUMN] if spec.sync_filter else [])]
        records = await self.client.read_records(
            table_ref(spec), ids, columns, include_lookup_names=False
        )
        return {
            r.id.lower(): (not spec.sync_filter) or sync_filter_allows(r.attributes)
            for r in records
        }

    async def count(self, spec: EntitySpec) -> int:
        return (await self.client.count(table_ref(spec))).value

    async def reference_table(
        self, table_name: str, entity_set: str, key: str, value: str
    ) -> dict[str, Any]:
        table = TableRef(table_name, entity_set, key)
        found: dict[str, Any] = {}
        async for page in self.client.iter_pages(table, [key, value], track_changes=False):
            for record in page.records:
                found[record.id.lower()] = record.attributes.get(value)
        return found

    async def identity(self) -> SourceIdentity:
        who = await self.client.whoami()
        org = await self.client.organization()
        return SourceIdentity(
            organization_id=who.organization_id.lower(),
            organization_name=org.name,
            organization_created_on=org.created_on.isoformat() if org.created_on else None,
            user_id=who.user_id.lower(),
        )


def _id_field(marketo_id: str) -> dict[str, Any]:
    """How a record names its Marketo id: numeric ``id`` (leads, companies, sales persons) or
    ``marketoGUID`` (opportunities, roles, custom objects)."""
    if marketo_id.isdigit():
        return {"id": int(marketo_id)}
    return {"marketoGUID": marketo_id}


def _outcome(outcome: RecordOutcome) -> WriteOutcome:
    marketo_id = str(outcome.marketo_id) if outcome.marketo_id is not None else outcome.marketo_guid
    if outcome.status == "created":
        return WriteOutcome(WriteStatus.CREATED, marketo_id)
    if outcome.status in ("updated", "deleted"):
        return WriteOutcome(WriteStatus.UPDATED, marketo_id)
    reason = outcome.reasons[0] if outcome.reasons else None
    return WriteOutcome(
        WriteStatus.SKIPPED,
        marketo_id,
        code=reason.code if reason else None,
        message="; ".join(f"{r.code} {r.message}" for r in outcome.reasons) or None,
    )


class MarketoTarget:
    """The Marketo side of the engine."""

    def __init__(self, client: MarketoClient) -> None:
        self.client = client

    async def quota_stop_until(self) -> datetime | None:
        """When the governor admits calls again, if the daily quota is used up now."""
        return await self.client.governor.quota_stop_until()

    async def current_values(
        self, spec: EntitySpec, marketo_ids: Sequence[str], fields: Sequence[str]
    ) -> dict[str, dict[str, Any]]:
        if not marketo_ids:
            return {}
        if spec.target is TargetKind.LEAD:
            records = await self.client.leads.get_by_filter(
                "id", [int(i) for i in marketo_ids], fields=["id", *fields]
            )
            return {str(r.get("id")): r for r in records}
        id_field = "id" if all(i.isdigit() for i in marketo_ids) else "marketoGUID"
        values: list[str | int] = [int(i) if id_field == "id" else i for i in marketo_ids]
        records = await self.objects_api(spec).query(id_field, values, fields=[id_field, *fields])
        return {str(r.get(id_field)): r for r in records}

    def objects_api(self, spec: EntitySpec) -> ObjectsApi:
        """The objects API for a non-person entity."""
        if spec.target is TargetKind.COMPANY:
            return self.client.companies
        if spec.target is TargetKind.OPPORTUNITY:
            return self.client.opportunities
        if spec.target is TargetKind.OPPORTUNITY_ROLE:
            return self.client.opportunity_roles
        if spec.target is TargetKind.SALES_PERSON:
            return self.client.sales_persons
        assert spec.object_name is not None  # the config validates this
        return self.client.custom_object(spec.object_name)

    async def write(
        self,
        spec: EntitySpec,
        records: Sequence[Mapping[str, Any]],
        mode: WriteMode,
        marketo_ids: Sequence[str] | None = None,
    ) -> list[WriteOutcome]:
        if not records:
            return []
        if mode is WriteMode.UPDATE_BY_ID:
            if marketo_ids is None or len(marketo_ids) != len(records):
                raise ValueError("UPDATE_BY_ID needs one Marketo id per record")
            records = [
                {**_id_field(marketo_id), **record}
                for record, marketo_id in zip(records, marketo_ids, strict=True)
            ]
        if spec.target is TargetKind.LEAD:
            if mode is WriteMode.UPDATE_BY_ID:
                outcomes = await self.client.leads.sync(
                    records, action="updateOnly", lookup_field="id"
                )
            else:
                outcomes = await self.client.leads.sync(
                    records,
                    action="updateOnly" if mode is WriteMode.UPDATE_BY_KEY else "createOrUpdate",
                    lookup_field=spec.key_field or "email",
                )
        else:
            api = self.objects_api(spec)
            if mode is WriteMode.UPDATE_BY_ID:
                outcomes = await api.sync(records, action="updateOnly", dedupe_by="idField")
            else:
                outcomes = await api.sync(
                    records,
                    action="updateOnly" if mode is WriteMode.UPDATE_BY_KEY else "createOrUpdate",
                    dedupe_by="dedupeFields",
                )
        return [_outcome(o) for o in outcomes]
