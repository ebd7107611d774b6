"""Typed shapes of what the Marketo client returns.

Per-record write results are small frozen dataclasses built by :mod:`.outcomes`; records read
back (activities, descriptions, import status) are pydantic models that keep unknown members
(``extra="allow"``), so a field Marketo adds later is carried, not dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

RecordStatus = Literal["created", "updated", "deleted", "skipped"]
"""The per-record ``status`` values Marketo documents (reference B.3)."""

SyncAction = Literal["createOrUpdate", "createOnly", "updateOnly", "createDuplicate"]
"""Sync Leads ``action`` values (reference B.4). Objects accept all but ``createDuplicate``."""

ObjectSyncAction = Literal["createOrUpdate", "createOnly", "updateOnly"]
DedupeBy = Literal["dedupeFields", "idField"]

CLIENT_OVERSIZE_CODE = "413"
"""Reason code given to a record the client refused to send because it alone exceeds the
request body limit (the HTTP status Marketo would have answered with)."""


@dataclass(frozen=True)
class Reason:
    """Why Marketo skipped a record: its 1xxx ``code`` and ``message`` (reference B.3)."""

    code: str
    message: str


@dataclass(frozen=True)
class RecordOutcome:
    """What happened to one input record of a sync or delete call.

    ``index`` is the record's position in the caller's input, so outcomes can be zipped with
    the input even after the client split it into several requests.
    """

    index: int
    status: RecordStatus
    marketo_id: int | None = None
    marketo_guid: str | None = None
    seq: int | None = None
    reasons: tuple[Reason, ...] = ()

    @property
    def ok(self) -> bool:
        """True unless the record was skipped."""
        return self.status != "skipped"

    @property
    def reason_codes(self) -> tuple[str, ...]:
        """The codes of :attr:`reasons`, for quick matching (``"1004" in o.reason_codes``)."""
        return tuple(r.code for r in self.reasons)


T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a paged read.

    ``next_page_token`` is what to send for the following page; for change feeds it is also
    the watermark to store once this page's items are safely handled (reference B.5).
    """

    items: list[T]
    next_page_token: str | None
    more_result: bool


@dataclass(frozen=True)
class ChangeFeed(Generic[T]):
    """Everything read from a change feed in one go, and the token to resume from."""

    items: list[T]
    watermark: str
    pages: int


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True)


class FieldChange(_Lenient):
    """One changed field inside a Change Data Value activity."""

    id: int | None = None
    name: str
    new_value: Any = Field(default=None, alias="newValue")
    old_value: Any = Field(default=None, alias="oldValue")


class ActivityAttribute(_Lenient):
    """A secondary attribute of an activity (``Reason``, ``Source``, ...)."""

    name: str
    value: Any = None


class LeadChange(_Lenient):
    """A New Lead (12) or Change Data Value (13) activity from ``leadchanges.json``."""

    id: int | None = None
    marketo_guid: str = Field(alias="marketoGUID")
    lead_id: int = Field(alias="leadId")
    activity_date: datetime = Field(alias="activityDate")
    activity_type_id: int = Field(alias="activityTypeId")
    fields: list[FieldChange] = Field(default_factory=list)
    attributes: list[ActivityAttribute] = Field(default_factory=list)

    def attribute(self, name: str) -> Any:
        """The value of the attribute called ``name``, or ``None``."""
        return next((a.value for a in self.attributes if a.name == name), None)


class DeletedLead(_Lenient):
    """A Delete Lead (37) activity from ``deletedleads.json``."""

    id: int | None = None
    marketo_guid: str = Field(alias="marketoGUID")
    lead_id: int = Field(alias="leadId")
    activity_date: datetime = Field(alias="activityDate")
    activity_type_id: int = Field(default=37, alias="activityTypeId")
    primary_attribute_value: Any = Field(default=None, alias="primaryAttributeValue")
    attributes: list[ActivityAttribute] = Field(default_factory=list)


class ApiName(_Lenient):
    """The ``rest`` / ``soap`` member of a lead field description."""

    name: str
    read_only: bool = Field(default=False, alias="readOnly")


class LeadField(_Lenient):
    """One lead field from ``leads/describe.json``."""

    id: int | None = None
    display_name: str | None = Field(default=None, alias="displayName")
    data_type: str = Field(alias="dataType")
    length: int | None = None
    rest: ApiName | None = None

    @property
    def api_name(self) -> str | None:
        """The REST API name, or ``None`` when the field is not usable over REST."""
        return self.rest.name if self.rest else None


class ObjectField(_Lenient):
    """One field of a company, opportunity, role, sales person or custom object."""

    name: str
    display_name: str | None = Field(default=None, alias="displayName")
    data_type: str = Field(alias="dataType")
    length: int | None = None
    updateable: bool = True


class ObjectDescription(_Lenient):
    """A ``describe.json`` result for an object type (reference B.6)."""

    name: str | None = None
    id_field: str | None = Field(default=None, alias="idField")
    dedupe_fields: list[str] = Field(default_factory=list, alias="dedupeFields")
    searchable_fields: list[list[str]] = Field(default_factory=list, alias="searchableFields")
    fields: list[ObjectField] = Field(default_factory=list)

    def field_names(self) -> set[str]:
        """Every field name, for validating a mapping against the instance."""
        return {f.name for f in self.fields}


class ImportStatus(_Lenient):
    """A bulk lead import job (``/bulk/v1/leads/batch/{id}.json``, reference B.7)."""

    batch_id: int = Field(alias="batchId")
    import_id: str | None = Field(default=None, alias="importId")
    status: str
    leads_processed: int | None = Field(default=None, alias="numOfLeadsProcessed")
    rows_failed: int | None = Field(default=None, alias="numOfRowsFailed")
    rows_with_warning: int | None = Field(default=None, alias="numOfRowsWithWarning")
    message: str | None = None

    @property
    def finished(self) -> bool:
        """True once the job is Complete or Failed (nothing more will change)."""
        return self.status in ("Complete", "Failed")


@dataclass(frozen=True)
class ImportRowProblem:
    """One row of a bulk import's failures or warnings file."""

    row: dict[str, str]
    """The submitted columns as Marketo echoed them."""
    message: str
    """The description Marketo appended to the row."""


@dataclass(frozen=True)
class ImportResult:
    """A finished bulk import job with its failed and warned rows."""

    status: ImportStatus
    failures: list[ImportRowProblem] = field(default_factory=list)
    warnings: list[ImportRowProblem] = field(default_factory=list)
