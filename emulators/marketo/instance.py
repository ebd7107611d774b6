"""One emulated Marketo instance: its configuration, clock and data stores.

Handlers, the control API and the bulk importer all work on an :class:`Instance`; it owns no
networking. ``reset`` returns it to the state it started in.
"""

from __future__ import annotations

import random
from typing import Any

from emulators.marketo.clock import EmulatorClock, iso_seconds
from emulators.marketo.config import EmulatorConfig
from emulators.marketo.schema import (
    LeadSchema,
    ObjectType,
    build_lead_schema,
    build_object_types,
)
from emulators.marketo.store import ActivityLog, LeadStore, ObjectStore, Record

# Activity type ids (reference B.5; activities.md, blog.md).
VISIT_WEBPAGE = 1
NEW_LEAD = 12
CHANGE_DATA_VALUE = 13
DELETE_LEAD = 37


class Instance:
    """The data of one instance plus the clock every rule reads."""

    def __init__(self, config: EmulatorConfig, clock: EmulatorClock | None = None) -> None:
        self.config = config
        self.clock = clock or EmulatorClock()
        self.lead_schema: LeadSchema = build_lead_schema(config.lead_custom_fields)
        self.object_types: dict[str, ObjectType] = build_object_types(config)
        self.partitions = {name: index + 1 for index, name in enumerate(config.partitions)}
        self.native_crm_sync = config.native_crm_sync
        self._guids = random.Random(config.data_seed)
        self.leads = LeadStore(self.lead_schema)
        self.objects = {
            path: ObjectStore(object_type, self._guids)
            for path, object_type in self.object_types.items()
        }
        self.activities = ActivityLog()

    def reset(self) -> None:
        """Forget every record and activity."""
        self._guids.seed(self.config.data_seed)
        self.leads.clear()
        for store in self.objects.values():
            store.clear()
        self.activities.clear()
        self.native_crm_sync = self.config.native_crm_sync

    def now_iso(self) -> str:
        """The current emulated time as a record timestamp."""
        return iso_seconds(self.clock.time())

    @property
    def companies(self) -> ObjectStore:
        """Company records."""
        return self.objects["companies"]

    @property
    def opportunities(self) -> ObjectStore:
        """Opportunity records."""
        return self.objects["opportunities"]

    @property
    def roles(self) -> ObjectStore:
        """Opportunity role records."""
        return self.objects["opportunities/roles"]

    @property
    def sales_persons(self) -> ObjectStore:
        """Sales person records."""
        return self.objects["salespersons"]

    def company_of(self, lead: Record) -> Record | None:
        """The company record a lead is linked to through ``externalCompanyId``, if it exists."""
        external_id = lead.get("externalCompanyId")
        if external_id is None:
            return None
        key = self.companies.by_dedupe((str(external_id).lower(),))
        return None if key is None else self.companies.records.get(key)

    def lead_view(self, lead: Record) -> Record:
        """A lead as reads show it: company fields come from its linked company record
        (companies.md: linked leads "inherit the values ... as though the values existed on
        the lead's own record")."""
        company = self.company_of(lead)
        if company is None:
            return lead
        view = {k: v for k, v in lead.items() if not self._is_company_field(k)}
        for name in _COMPANY_TO_LEAD:
            if name in company:
                view[name] = company[name]
        return view

    def _is_company_field(self, name: str) -> bool:
        field = self.lead_schema.get(name)
        return field is not None and field.company_field

    def record_activity(
        self,
        lead_id: int,
        type_id: int,
        *,
        primary_id: Any = None,
        primary_value: Any = None,
        attributes: list[dict[str, Any]] | None = None,
        fields: list[dict[str, Any]] | None = None,
    ) -> Record:
        """Append one activity for ``lead_id`` at the current emulated time."""
        activity: Record = {
            "leadId": lead_id,
            "activityTypeId": type_id,
            "primaryAttributeValueId": primary_id,
            "primaryAttributeValue": primary_value,
            "attributes": attributes or [],
        }
        if fields is not None:
            activity["fields"] = fields
        return self.activities.append(self.clock.time(), activity)


# Company fields a linked lead shows (the company object's names equal the lead's).
_COMPANY_TO_LEAD = (
    "company",
    "site",
    "billingStreet",
    "billingCity",
    "billingState",
    "billingCountry",
    "billingPostalCode",
    "website",
    "mainPhone",
    "annualRevenue",
    "numberOfEmployees",
    "industry",
    "sicCode",
)
