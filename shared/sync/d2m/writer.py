"""The Marketo side as a record writer: Sync Leads and the object sync endpoints.

The write mode decides the endpoint's action and dedupe key (Marketo REST API, "Leads" and
"Custom Objects"/"Companies"/"Opportunities"/"Sales Persons"):

* ``UPSERT_BY_KEY``: ``createOrUpdate`` on the entity's key field (the Dynamics id);
* ``UPDATE_BY_KEY``: ``updateOnly`` on that key, which never creates a record;
* ``UPDATE_BY_ID``: ``updateOnly`` on Marketo's own id (``lookupField=id`` for leads,
  ``dedupeBy=idField`` with ``id``/``marketoGUID`` for objects).

A record Marketo no longer has is answered with skip reason 1004 (lead not found) or 1013
(object not found); :meth:`MarketoRecordWriter.is_missing` says so for the pipeline.
"""

from __future__ import annotations

from collections.abc import MutableMapping, Sequence
from datetime import datetime
from typing import Any, Literal

from shared.marketo.client import MarketoClient
from shared.marketo.models import RecordOutcome
from shared.marketo.objects import ObjectsApi
from shared.sync.config import EntitySpec, TargetKind
from shared.sync.pipeline import WriteMode, WriteOp, WriteOutcome, WriteStatus

NOT_FOUND_CODES = frozenset({"1004", "1013"})
"""Skip reasons meaning the Marketo record is gone (lead not found; object not found)."""


def id_field(marketo_id: str) -> dict[str, Any]:
    """How a record names its Marketo id: numeric ``id`` (leads, companies, sales persons) or
    ``marketoGUID`` (opportunities, roles, custom objects)."""
    if marketo_id.isdigit():
        return {"id": int(marketo_id)}
    return {"marketoGUID": marketo_id}


def write_outcome(outcome: RecordOutcome) -> WriteOutcome:
    """A Marketo per-record result as the pipeline sees it."""
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


class MarketoRecordWriter:
    """Writes entities' records to Marketo."""

    def __init__(self, client: MarketoClient) -> None:
        self.client = client

    async def quota_stop_until(self) -> datetime | None:
        """When the governor admits calls again, if the daily quota is used up now."""
        return await self.client.governor.quota_stop_until()

    def is_missing(self, outcome: WriteOutcome) -> bool:
        return outcome.code in NOT_FOUND_CODES

    async def current(
        self, spec: EntitySpec, target_ids: Sequence[str], fields: Sequence[str]
    ) -> dict[str, dict[str, Any]]:
        if not target_ids:
            return {}
        if spec.target is TargetKind.LEAD:
            records = await self.client.leads.get_by_filter(
                "id", [int(i) for i in target_ids], fields=["id", *fields]
            )
            return {str(r.get("id")): r for r in records}
        key = "id" if all(i.isdigit() for i in target_ids) else "marketoGUID"
        values: list[str | int] = [int(i) if key == "id" else i for i in target_ids]
        records = await self.objects_api(spec).query(key, values, fields=[key, *fields])
        return {str(r.get(key)): r for r in records}

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
        mode: WriteMode,
        ops: Sequence[WriteOp],
        done: MutableMapping[int, WriteOutcome] | None = None,
    ) -> list[WriteOutcome]:
        if not ops:
            return []
        if mode is WriteMode.UPDATE_BY_ID:
            if any(op.target_id is None for op in ops):
                raise ValueError("UPDATE_BY_ID needs the Marketo id of every record")
            records = [{**id_field(op.target_id or ""), **op.payload} for op in ops]
        else:
            records = [dict(op.payload) for op in ops]

        def answered(outcome: RecordOutcome) -> None:
            if done is not None:
                done[outcome.index] = write_outcome(outcome)

        action: Literal["updateOnly", "createOrUpdate"] = (
            "createOrUpdate" if mode is WriteMode.UPSERT_BY_KEY else "updateOnly"
        )
        if spec.target is TargetKind.LEAD:
            lookup = "id" if mode is WriteMode.UPDATE_BY_ID else (spec.key_field or "email")
            outcomes = await self.client.leads.sync(
                records, action=action, lookup_field=lookup, answered=answered
            )
        else:
            dedupe: Literal["idField", "dedupeFields"] = (
                "idField" if mode is WriteMode.UPDATE_BY_ID else "dedupeFields"
            )
            outcomes = await self.objects_api(spec).sync(
                records, action=action, dedupe_by=dedupe, answered=answered
            )
        return [write_outcome(o) for o in outcomes]
