"""Loading records straight into the stores (control API ``/_emulator/seed``, CLI ``--seed``).

Seeding bypasses the API's dedupe (so duplicates can be set up on purpose, e.g. two leads with
one email for 1007) but not its field validation. It logs no activities unless asked to.
"""

from __future__ import annotations

import random
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from emulators.marketo.instance import Instance
from emulators.marketo.leads import RecordSkip, api_origin, create_lead, normalize
from emulators.marketo.objects import Skip, normalize_object
from emulators.marketo.store import Record

_FIRST = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia", "Tim")
_LAST = ("Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson")
_CITIES = ("Chicago", "Dublin", "Lyon", "Osaka", "Austin", "Leeds", "Porto", "Perth")


class GenerateLeads(BaseModel):
    """Deterministic synthetic leads: ``lead{n}@{domain}`` with names, city and a GUID."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    count: int = Field(ge=0, le=2_000_000)
    seed: int = 1
    start: int = Field(default=1, ge=0)
    domain: str = "example.com"


class SeedRequest(BaseModel):
    """What ``POST /_emulator/seed`` accepts (every list optional)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    leads: list[dict[str, Any]] = Field(default_factory=list)
    generate_leads: GenerateLeads | None = Field(default=None, alias="generateLeads")
    companies: list[dict[str, Any]] = Field(default_factory=list)
    opportunities: list[dict[str, Any]] = Field(default_factory=list)
    opportunity_roles: list[dict[str, Any]] = Field(default_factory=list, alias="opportunityRoles")
    sales_persons: list[dict[str, Any]] = Field(default_factory=list, alias="salesPersons")
    custom_objects: dict[str, list[dict[str, Any]]] = Field(
        default_factory=dict, alias="customObjects"
    )
    activities: bool = False
    """Log New Lead activities for seeded leads (as if created through the API)."""


class SeedError(Exception):
    """A seed record that does not fit its schema (answered as HTTP 400)."""


def seed(instance: Instance, request: SeedRequest) -> dict[str, Any]:
    """Insert everything in ``request``; returns the ids created per kind."""
    created: dict[str, Any] = {}
    # Parents first, as the recipe in A.10 orders them.
    created["salesPersons"] = _seed_objects(instance, "salespersons", request.sales_persons)
    created["companies"] = _seed_objects(instance, "companies", request.companies)
    lead_ids = [_seed_lead(instance, raw, request.activities) for raw in request.leads]
    if request.generate_leads is not None:
        lead_ids.extend(generate_leads(instance, request.generate_leads, request.activities))
    created["leads"] = lead_ids
    created["opportunities"] = _seed_objects(instance, "opportunities", request.opportunities)
    created["opportunityRoles"] = _seed_objects(
        instance, "opportunities/roles", request.opportunity_roles
    )
    custom: dict[str, list[Any]] = {}
    for api_name, records in request.custom_objects.items():
        custom[api_name] = _seed_objects(instance, f"customobjects/{api_name}", records)
    created["customObjects"] = custom
    return created


def _seed_lead(instance: Instance, raw: dict[str, Any], activities: bool) -> int:
    try:
        values = normalize(instance.lead_schema, raw, allow_id=True, allow_system=True)
    except RecordSkip as exc:
        raise SeedError(f"lead {raw!r}: {exc.code} {exc.message}") from None
    lead_id = values.pop("id", None)
    if lead_id is None:
        lead_id = instance.leads.new_id()
    elif lead_id in instance.leads.records:
        raise SeedError(f"lead id {lead_id} already exists")
    partition = values.pop("leadPartitionId", None) or 1
    origin = api_origin("syncLead", "seed", "") if activities else None
    create_lead(instance, lead_id, values, partition, origin)
    return int(lead_id)


def generate_leads(instance: Instance, spec: GenerateLeads, activities: bool) -> list[int]:
    """Create ``spec.count`` synthetic leads quickly (100k in about a second)."""
    rng = random.Random(spec.seed)
    now = instance.now_iso()
    origin = api_origin("syncLead", "seed", "") if activities else None
    ids: list[int] = []
    for n in range(spec.start, spec.start + spec.count):
        values: dict[str, Any] = {
            "email": f"lead{n}@{spec.domain}",
            "firstName": rng.choice(_FIRST),
            "lastName": rng.choice(_LAST),
            "city": rng.choice(_CITIES),
            "externalPersonId": f"{rng.getrandbits(32):08x}-0000-4000-8000-{n:012d}",
            "createdAt": now,
            "updatedAt": now,
        }
        lead_id = instance.leads.new_id()
        create_lead(instance, lead_id, values, 1, origin)
        ids.append(lead_id)
    return ids


def _seed_objects(instance: Instance, path: str, records: list[dict[str, Any]]) -> list[Any]:
    store = instance.objects.get(path)
    if store is None:
        if records:
            raise SeedError(f"unknown object type {path!r}")
        return []
    object_type = store.type
    keys: list[Any] = []
    for raw in records:
        try:
            values = normalize_object(object_type, raw, allow_id=True)
        except Skip as exc:
            raise SeedError(f"{path} {raw!r}: {exc.code} {exc.message}") from None
        missing = [name for name in object_type.dedupe_fields if values.get(name) is None]
        if missing:
            raise SeedError(f"{path} {raw!r}: missing {', '.join(missing)}")
        key = values.get(object_type.id_field) or store.new_key()
        now = instance.now_iso()
        record: Record = {k: v for k, v in values.items() if v is not None}
        record[object_type.id_field] = key
        record.setdefault("createdAt", now)
        record.setdefault("updatedAt", now)
        store.insert(record)
        keys.append(key)
    return keys
