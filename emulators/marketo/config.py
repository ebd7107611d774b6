"""The emulator's configuration: credentials, limits, custom fields and custom object types.

Everything has a default that matches the real service (reference B.1/B.2) and what this project's
sync needs (the ``dynamics*`` custom fields). A JSON file of the same shape overrides any part of
it (``dmsync emulator marketo --config FILE``); :func:`load_config` reads one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

DEFAULT_CLIENT_ID = "dmsync-emulator"
DEFAULT_CLIENT_SECRET = "dmsync-emulator-secret"  # noqa: S105 - a documented local test credential
DEFAULT_API_USER = "dmsync-api@emulator.local"

FieldType = Literal[
    "string",
    "text",
    "email",
    "phone",
    "url",
    "boolean",
    "integer",
    "float",
    "currency",
    "date",
    "datetime",
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class ApiClient(_Model):
    """One custom service (LaunchPoint) with its API-only user (reference B.1)."""

    client_id: str = Field(min_length=1)
    client_secret: SecretStr
    api_user: str = Field(default=DEFAULT_API_USER, min_length=1)


class LimitSettings(_Model):
    """Instance-wide limits (reference B.2). ``enabled`` switches the three call limits."""

    enabled: bool = True
    rate_calls: int = Field(default=100, ge=1)
    rate_window_seconds: float = Field(default=20.0, gt=0)
    concurrency: int = Field(default=10, ge=1)
    daily_quota: int = Field(default=50_000, ge=1)
    max_body_bytes: int = Field(default=1024 * 1024, ge=1)
    max_bulk_body_bytes: int = Field(default=10 * 1024 * 1024, ge=1)
    max_uri_bytes: int = Field(default=8 * 1024, ge=1)


class CustomField(_Model):
    """A custom field on leads, companies or opportunities, or a field of a custom object."""

    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$")
    data_type: FieldType = Field(alias="dataType")
    display_name: str | None = Field(default=None, alias="displayName")
    length: int | None = Field(default=None, ge=1)
    searchable: bool | None = None
    """Usable as ``filterType`` / ``lookupField``; default: string, email and integer fields
    (leads.md: "only the following data types are supported: string, email, integer")."""
    updateable: bool = True


class Relationship(_Model):
    """A custom object's link field to a parent record (custom-objects.md ``relationships``)."""

    field: str
    related_object: Literal["Lead", "Company"] = Field(alias="relatedObject")
    related_field: str = Field(alias="relatedField")


class CustomObjectType(_Model):
    """A custom object type; at most 10 types with 50 fields each (reference B.6)."""

    api_name: str = Field(alias="apiName", pattern=r"^[A-Za-z][A-Za-z0-9_]*$")
    display_name: str = Field(alias="displayName")
    description: str = ""
    dedupe_fields: tuple[str, ...] = Field(alias="dedupeFields", min_length=1)
    fields: tuple[CustomField, ...] = Field(max_length=50)
    relationships: tuple[Relationship, ...] = ()

    @field_validator("dedupe_fields")
    @classmethod
    def _dedupe_fields_exist(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError("dedupeFields must not repeat a field")
        return value


class BulkSettings(_Model):
    """Bulk lead import (reference B.7): 2 importing at once, 10 in the queue, 7-day batch ids."""

    max_importing: int = Field(default=2, ge=1)
    max_queued: int = Field(default=10, ge=1)
    rows_per_step: int = Field(default=2000, ge=1)
    step_seconds: float = Field(default=0.05, gt=0)
    retention_days: float = Field(default=7.0, gt=0)


class EmulatorConfig(_Model):
    """The whole configuration of one emulated Marketo instance."""

    munchkin_id: str = "123-EMU-456"
    clients: tuple[ApiClient, ...] = (
        ApiClient(client_id=DEFAULT_CLIENT_ID, client_secret=SecretStr(DEFAULT_CLIENT_SECRET)),
    )
    token_ttl_seconds: int = Field(default=3600, ge=1)
    limits: LimitSettings = LimitSettings()
    lead_custom_fields: tuple[CustomField, ...] = ()
    company_custom_fields: tuple[CustomField, ...] = ()
    opportunity_custom_fields: tuple[CustomField, ...] = ()
    custom_objects: tuple[CustomObjectType, ...] = Field(default=(), max_length=10)
    partitions: tuple[str, ...] = ("Default",)
    native_crm_sync: bool = False
    """When true the Company/Opportunity/Role/SalesPerson writes are refused with 1018
    (lead-database.md: those APIs are read-only under a native CRM sync)."""
    bulk: BulkSettings = BulkSettings()
    timezone: str = "America/Chicago"
    """The daily quota resets at midnight in this zone ("12:00AM CST", error-codes.md 607)."""
    upsert_race_seconds: float = Field(default=0.0, ge=0)
    """Seconds a Sync Leads call spends between finding matches and writing; overlapping
    upserts of one key then both create (leads.md warns they "may result" in duplicates)."""
    data_seed: int = 20_260_101
    """Seeds generated marketoGUIDs and fault injection so runs are reproducible."""


def default_config() -> EmulatorConfig:
    """The default instance: one API client and the custom fields the sync needs."""
    return EmulatorConfig(
        lead_custom_fields=(
            CustomField(name="dynamicsType", data_type="string", display_name="Dynamics Type"),
            CustomField(
                name="dynamicsIsDeleted", data_type="boolean", display_name="Dynamics Is Deleted"
            ),
            CustomField(
                name="dynamicsCreatedDate",
                data_type="datetime",
                display_name="Dynamics Created Date",
            ),
            CustomField(
                name="dynamicsOwnerId", data_type="string", display_name="Dynamics Owner Id"
            ),
            CustomField(
                name="dynamicsSyncToMkto", data_type="boolean", display_name="Dynamics Sync To Mkto"
            ),
        ),
        company_custom_fields=(
            CustomField(
                name="dynamicsIsDeleted", data_type="boolean", display_name="Dynamics Is Deleted"
            ),
        ),
        opportunity_custom_fields=(
            CustomField(
                name="dynamicsIsDeleted", data_type="boolean", display_name="Dynamics Is Deleted"
            ),
        ),
        custom_objects=(
            CustomObjectType(
                api_name="project_c",
                display_name="Project",
                description="Dynamics project (custom entity)",
                dedupe_fields=("dynamicsProjectId",),
                fields=(
                    CustomField(
                        name="dynamicsProjectId",
                        data_type="string",
                        length=36,
                        display_name="Dynamics Project Id",
                        updateable=False,
                    ),
                    CustomField(
                        name="projectName", data_type="string", display_name="Project Name"
                    ),
                    CustomField(name="status", data_type="string", display_name="Status"),
                    CustomField(name="budget", data_type="currency", display_name="Budget"),
                    CustomField(name="startDate", data_type="date", display_name="Start Date"),
                    CustomField(
                        name="externalCompanyId",
                        data_type="string",
                        length=100,
                        display_name="Company",
                    ),
                    CustomField(
                        name="dynamicsIsDeleted",
                        data_type="boolean",
                        display_name="Dynamics Is Deleted",
                    ),
                ),
                relationships=(
                    Relationship(
                        field="externalCompanyId",
                        related_object="Company",
                        related_field="externalCompanyId",
                    ),
                ),
            ),
        ),
    )


def load_config(path: Path) -> EmulatorConfig:
    """Read a JSON configuration file; missing keys take the :func:`default_config` values."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: the configuration must be a JSON object")
    return config_from_dict(data)


def config_from_dict(data: dict[str, object]) -> EmulatorConfig:
    """Overlay ``data`` (top-level keys) on the default configuration and validate it."""
    base = default_config().model_dump(by_alias=True)
    base.update(data)
    return EmulatorConfig.model_validate(base)


def config_to_json(config: EmulatorConfig) -> str:
    """The configuration as JSON *with* client secrets, for handing to a child process only."""
    data = config.model_dump(by_alias=True, mode="json")
    data["clients"] = [
        {
            "client_id": client.client_id,
            "client_secret": client.client_secret.get_secret_value(),
            "api_user": client.api_user,
        }
        for client in config.clients
    ]
    return json.dumps(data)
