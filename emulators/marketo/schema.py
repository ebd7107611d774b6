"""The object types of the lead database and their fields (reference B.4/B.6, A.10).

Standard fields follow list-of-standard-fields.md and the describe examples in leads.md,
companies.md, opportunities.md, opportunity-roles.md and sales-persons.md; configured custom
fields and custom object types are appended. Name lookups ignore case, as the docs' own examples
do (``fields=marketoGuid`` in custom-objects.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from emulators.marketo.config import CustomField, CustomObjectType, EmulatorConfig
from emulators.marketo.fields import FieldDef, custom_field_def

# (name, display name, type, length, writable, searchable, company field)
_S = "string"
_LEAD_FIELDS: tuple[tuple[str, str, str, int | None, bool, bool, bool], ...] = (
    ("id", "Id", "integer", None, False, True, False),
    ("email", "Email Address", "email", 255, True, True, False),
    ("salutation", "Salutation", _S, 255, True, False, False),
    ("firstName", "First Name", _S, 255, True, False, False),
    ("middleName", "Middle Name", _S, 255, True, False, False),
    ("lastName", "Last Name", _S, 255, True, False, False),
    ("title", "Job Title", _S, 255, True, False, False),
    ("department", "Department", _S, 255, True, False, False),
    ("leadRole", "Role", _S, 255, True, False, False),
    ("phone", "Phone Number", "phone", 255, True, False, False),
    ("mobilePhone", "Mobile Phone Number", "phone", 255, True, False, False),
    ("fax", "Fax Number", "phone", 255, True, False, False),
    ("address", "Address", "text", None, True, False, False),
    ("city", "City", _S, 255, True, False, False),
    ("state", "State", _S, 255, True, False, False),
    ("country", "Country", _S, 255, True, False, False),
    ("postalCode", "Postal Code", _S, 255, True, False, False),
    ("dateOfBirth", "Date of Birth", "date", None, True, False, False),
    ("leadSource", "Lead Source", _S, 255, True, False, False),
    ("leadStatus", "Lead Status", _S, 255, True, False, False),
    ("rating", "Lead Rating", _S, 255, True, False, False),
    ("leadScore", "Lead Score", "integer", None, True, False, False),
    ("doNotCall", "Do Not Call", "boolean", None, True, False, False),
    ("doNotCallReason", "Do Not Call Reason", _S, 512, True, False, False),
    ("unsubscribed", "Unsubscribed", "boolean", None, True, False, False),
    ("unsubscribedReason", "Unsubscribed Reason", "text", None, True, False, False),
    ("emailInvalid", "Email Invalid", "boolean", None, True, False, False),
    ("emailInvalidCause", "Email Invalid Cause", _S, 255, True, False, False),
    ("company", "Company Name", _S, 255, True, False, True),
    ("site", "Site", _S, 255, True, False, True),
    ("billingStreet", "Billing Address", "text", None, True, False, True),
    ("billingCity", "Billing City", _S, 255, True, False, True),
    ("billingState", "Billing State", _S, 255, True, False, True),
    ("billingCountry", "Billing Country", _S, 255, True, False, True),
    ("billingPostalCode", "Billing Postal Code", _S, 255, True, False, True),
    ("website", "Website", "url", 255, True, False, True),
    ("mainPhone", "Main Phone", "phone", 255, True, False, True),
    ("annualRevenue", "Annual Revenue", "currency", None, True, False, True),
    ("numberOfEmployees", "Num Employees", "integer", None, True, False, True),
    ("industry", "Industry", _S, 255, True, False, True),
    ("sicCode", "SIC Code", _S, 40, True, False, True),
    ("externalPersonId", "External Person Id", _S, 255, True, True, False),
    ("externalCompanyId", "External Company Id", _S, 100, True, True, False),
    ("externalSalesPersonId", "External Sales Person Id", _S, 255, True, True, False),
    ("leadPartitionId", "Lead Partition Id", "integer", None, False, True, False),
    ("createdAt", "Created At", "datetime", None, False, False, False),
    ("updatedAt", "Updated At", "datetime", None, False, False, False),
    # Sales Insight values: read-only through the API, written back to Dynamics (A.10 step 6).
    ("priority", "Priority", "integer", None, False, False, False),
    ("relativeScore", "Relative Score", "integer", None, False, False, False),
    ("urgency", "Urgency", "float", None, False, False, False),
    ("relativeScoring", "Relative Scoring", "integer", None, False, False, False),
    ("relativeUrgency", "Relative Urgency", "integer", None, False, False, False),
    ("msiLastInterestingMomentType", "Last Interesting Moment Type", _S, 255, False, False, False),
    ("msiLastInterestingMomentDate", "Last Interesting Moment Date", "datetime", None, False, False,
     False),
    ("msiLastInterestingMomentDesc", "Last Interesting Moment Desc", "text", None, False, False,
     False),
    ("msiLastInterestingMomentSource", "Last Interesting Moment Source", _S, 255, False, False,
     False),
)  # fmt: skip

LEAD_DEFAULT_FIELDS = ("id", "email", "updatedAt", "createdAt", "firstName", "lastName")
"""leads.md: the fields returned when ``fields`` is omitted."""
COMPANY_FIELD_NAMES = frozenset(spec[0] for spec in _LEAD_FIELDS if spec[6])


def _index(fields: tuple[FieldDef, ...]) -> dict[str, FieldDef]:
    return {f.name.lower(): f for f in fields}


@dataclass(frozen=True)
class LeadSchema:
    """Lead (person) fields."""

    fields: tuple[FieldDef, ...]
    by_lower: dict[str, FieldDef] = field(repr=False)

    def get(self, name: str) -> FieldDef | None:
        """The field called ``name`` (any case), or ``None``."""
        return self.by_lower.get(name.lower())

    @property
    def searchable(self) -> tuple[FieldDef, ...]:
        """Fields usable as ``filterType`` (describe2's ``searchableFields``)."""
        return tuple(f for f in self.fields if f.searchable)


def build_lead_schema(custom: tuple[CustomField, ...]) -> LeadSchema:
    """Standard lead fields plus the configured custom ones (ids from 1000 up)."""
    defs = [
        FieldDef(
            id=index + 1,
            name=name,
            display_name=display,
            data_type=data_type,
            length=length,
            updateable=writable,
            searchable=searchable,
            company_field=company,
        )
        for index, (name, display, data_type, length, writable, searchable, company) in enumerate(
            _LEAD_FIELDS
        )
    ]
    defs.extend(custom_field_def(1000 + index, spec) for index, spec in enumerate(custom))
    _refuse_duplicates("lead", defs)
    fields = tuple(defs)
    return LeadSchema(fields=fields, by_lower=_index(fields))


ParentKind = Literal["lead", "opportunity", "company"]


@dataclass(frozen=True)
class ParentLink:
    """A field whose value must name an existing parent record."""

    field: str
    parent: ParentKind
    parent_field: str


@dataclass(frozen=True)
class ObjectType:
    """A lead-database object other than leads: its keys, fields and rules."""

    path: str
    """The URL segment after ``/rest/v1/``: ``companies``, ``customobjects/project_c``, ..."""
    name: str
    display_name: str
    description: str
    id_field: str
    dedupe_fields: tuple[str, ...]
    searchable_fields: tuple[tuple[str, ...], ...]
    fields: tuple[FieldDef, ...]
    default_fields: tuple[str, ...] | None
    """Fields a query returns without ``fields``; ``None`` means every populated field."""
    required: tuple[str, ...] = ()
    parents: tuple[ParentLink, ...] = ()
    crm_managed: bool = False
    """Refused (1018) while a native CRM sync is on (lead-database.md)."""
    checks_sales_person: bool = False
    """An unknown ``externalSalesPersonId`` fails the call with 718 (error-codes.md)."""
    relationships: tuple[dict[str, object], ...] = ()
    first_id: int = 1
    by_lower: dict[str, FieldDef] = field(default_factory=dict, repr=False)

    @property
    def id_is_int(self) -> bool:
        """Whether the id field is the integer ``id`` (else the string ``marketoGUID``)."""
        return self.id_field == "id"

    def get(self, name: str) -> FieldDef | None:
        """The field called ``name`` (any case), or ``None``."""
        return self.by_lower.get(name.lower())


def _system_fields(id_field: str, start: int) -> list[FieldDef]:
    if id_field == "id":
        key = FieldDef(
            id=start, name="id", display_name="Id", data_type="integer", updateable=False
        )
    else:
        key = FieldDef(
            id=start,
            name="marketoGUID",
            display_name="Marketo GUID",
            data_type="string",
            length=36,
            updateable=False,
        )
    return [
        key,
        FieldDef(start + 1, "createdAt", "Created At", "datetime", updateable=False),
        FieldDef(start + 2, "updatedAt", "Updated At", "datetime", updateable=False),
    ]


def _plain(start: int, specs: list[tuple[str, str, str, int | None]]) -> list[FieldDef]:
    return [
        FieldDef(start + index, name, display, data_type, length)
        for index, (name, display, data_type, length) in enumerate(specs)
    ]


def _compose(*parts: list[FieldDef]) -> list[FieldDef]:
    return [f for part in parts for f in part]


def _with_custom(
    defs: list[FieldDef], custom: tuple[CustomField, ...], start: int
) -> tuple[FieldDef, ...]:
    extra = [custom_field_def(start + index, spec) for index, spec in enumerate(custom)]
    return tuple(_compose(defs, extra))


def _searchable(base: list[list[str]], fields: tuple[FieldDef, ...]) -> tuple[tuple[str, ...], ...]:
    names = [tuple(group) for group in base]
    seen = {group[0] for group in names if len(group) == 1}
    for f in fields:
        if f.custom and f.searchable and f.name not in seen:
            names.append((f.name,))
    return tuple(names)


def _refuse_duplicates(kind: str, defs: list[FieldDef]) -> None:
    seen: set[str] = set()
    for f in defs:
        if f.name.lower() in seen:
            raise ValueError(f"{kind}: field {f.name!r} is defined twice")
        seen.add(f.name.lower())


def _object(**kwargs: object) -> ObjectType:
    fields = kwargs["fields"]
    assert isinstance(fields, tuple)
    _refuse_duplicates(str(kwargs["name"]), list(fields))
    return ObjectType(by_lower=_index(fields), **kwargs)  # type: ignore[arg-type]


def build_object_types(config: EmulatorConfig) -> dict[str, ObjectType]:
    """Companies, opportunities, roles, sales persons and the configured custom objects."""
    company_fields = _with_custom(
        _compose(
            _system_fields("id", 1),
            [FieldDef(4, "externalCompanyId", "External Company Id", "string", 100, False)],
            _plain(
                5,
                [
                    ("company", "Company Name", "string", 255),
                    ("site", "Site", "string", 255),
                    ("billingStreet", "Billing Address", "text", None),
                    ("billingCity", "Billing City", "string", 255),
                    ("billingState", "Billing State", "string", 255),
                    ("billingCountry", "Billing Country", "string", 255),
                    ("billingPostalCode", "Billing Postal Code", "string", 255),
                    ("website", "Website", "url", 255),
                    ("mainPhone", "Main Phone", "phone", 255),
                    ("annualRevenue", "Annual Revenue", "currency", None),
                    ("numberOfEmployees", "Num Employees", "integer", None),
                    ("industry", "Industry", "string", 255),
                    ("sicCode", "SIC Code", "string", 40),
                    ("externalSalesPersonId", "External Sales Person Id", "string", 255),
                ],
            ),
        ),
        config.company_custom_fields,
        100,
    )
    opportunity_fields = _with_custom(
        _compose(
            _system_fields("marketoGUID", 1),
            [FieldDef(4, "externalOpportunityId", "External Opportunity Id", "string", 50, False)],
            _plain(
                5,
                [
                    ("name", "Name", "string", 255),
                    ("description", "Description", "string", 2000),
                    ("type", "Type", "string", 255),
                    ("stage", "Stage", "string", 255),
                    ("amount", "Amount", "currency", None),
                    ("expectedRevenue", "Expected Revenue", "currency", None),
                    ("probability", "Probability", "integer", None),
                    ("closeDate", "Close Date", "date", None),
                    ("isClosed", "Is Closed", "boolean", None),
                    ("isWon", "Is Won", "boolean", None),
                    ("fiscalQuarter", "Fiscal Quarter", "integer", None),
                    ("fiscalYear", "Fiscal Year", "integer", None),
                    ("forecastCategoryName", "Forecast Category Name", "string", 255),
                    ("leadSource", "Lead Source", "string", 255),
                    ("nextStep", "Next Step", "string", 255),
                    ("source", "Source", "string", 255),
                    ("lastActivityDate", "Last Activity Date", "date", None),
                    ("externalCreatedDate", "External Created Date", "datetime", None),
                    ("externalCompanyId", "External Company Id", "string", 100),
                    ("externalSalesPersonId", "External Sales Person Id", "string", 255),
                ],
            ),
        ),
        config.opportunity_custom_fields,
        100,
    )
    role_fields = tuple(
        _compose(
            _system_fields("marketoGUID", 1),
            [
                FieldDef(
                    4, "externalOpportunityId", "External Opportunity Id", "string", 50, False
                ),
                FieldDef(5, "leadId", "Lead Id", "integer", updateable=False),
                FieldDef(6, "role", "Role", "string", 50, updateable=False),
                FieldDef(7, "isPrimary", "Is Primary", "boolean"),
                FieldDef(8, "externalCreatedDate", "External Created Date", "datetime"),
            ],
        )
    )
    sales_person_fields = tuple(
        _compose(
            _system_fields("id", 1),
            [
                FieldDef(
                    4, "externalSalesPersonId", "External Sales Person Id", "string", 255, False
                )
            ],
            _plain(
                5,
                [
                    ("email", "Email", "string", 255),
                    ("firstName", "First Name", "string", 255),
                    ("lastName", "Last Name", "string", 255),
                    ("title", "Title", "string", 255),
                    ("phone", "Phone", "phone", 255),
                    ("mobilePhone", "Mobile Phone", "phone", 255),
                    ("fax", "Fax", "phone", 255),
                ],
            ),
        )
    )
    types = {
        "companies": _object(
            path="companies",
            name="Company",
            display_name="Company",
            description="Company object",
            id_field="id",
            dedupe_fields=("externalCompanyId",),
            searchable_fields=_searchable(
                [["externalCompanyId"], ["id"], ["company"]], company_fields
            ),
            fields=company_fields,
            default_fields=("id", "externalCompanyId", "updatedAt", "createdAt"),
            crm_managed=True,
            checks_sales_person=True,
            first_id=5001,
        ),
        "opportunities": _object(
            path="opportunities",
            name="opportunity",
            display_name="Opportunity",
            description="Opportunity object",
            id_field="marketoGUID",
            dedupe_fields=("externalOpportunityId",),
            searchable_fields=_searchable(
                [["externalOpportunityId"], ["marketoGUID"]], opportunity_fields
            ),
            fields=opportunity_fields,
            default_fields=("marketoGUID", "externalOpportunityId", "updatedAt", "createdAt"),
            required=("name",),
            crm_managed=True,
            checks_sales_person=True,
        ),
        "opportunities/roles": _object(
            path="opportunities/roles",
            name="opportunityRole",
            display_name="Opportunity Role",
            description="Opportunity role object",
            id_field="marketoGUID",
            dedupe_fields=("externalOpportunityId", "leadId", "role"),
            searchable_fields=(
                ("externalOpportunityId", "leadId", "role"),
                ("marketoGUID",),
                ("leadId",),
                ("externalOpportunityId",),
            ),
            fields=role_fields,
            default_fields=(
                "marketoGUID",
                "externalOpportunityId",
                "leadId",
                "role",
                "updatedAt",
                "createdAt",
            ),
            parents=(
                ParentLink("externalOpportunityId", "opportunity", "externalOpportunityId"),
                ParentLink("leadId", "lead", "id"),
            ),
            crm_managed=True,
        ),
        "salespersons": _object(
            path="salespersons",
            name="SalesPerson",
            display_name="Sales Person",
            description="Sales person object",
            id_field="id",
            dedupe_fields=("externalSalesPersonId",),
            searchable_fields=(("email",), ("id",), ("externalSalesPersonId",)),
            fields=sales_person_fields,
            default_fields=None,
            crm_managed=True,
            first_id=9001,
        ),
    }
    for custom in config.custom_objects:
        types[f"customobjects/{custom.api_name}"] = _custom_object(custom)
    return types


def _custom_object(spec: CustomObjectType) -> ObjectType:
    fields = _with_custom(_system_fields("marketoGUID", 1), spec.fields, 10)
    names = {f.name for f in fields}
    for dedupe in spec.dedupe_fields:
        if dedupe not in names:
            raise ValueError(f"custom object {spec.api_name}: dedupe field {dedupe!r} not defined")
    for rel in spec.relationships:
        if rel.field not in names:
            raise ValueError(f"custom object {spec.api_name}: link field {rel.field!r} not defined")
    base = [list(spec.dedupe_fields), ["marketoGUID"]]
    base.extend([rel.field] for rel in spec.relationships if [rel.field] not in base)
    parent_kind: dict[str, ParentKind] = {"Lead": "lead", "Company": "company"}
    return _object(
        path=f"customobjects/{spec.api_name}",
        name=spec.api_name,
        display_name=spec.display_name,
        description=spec.description,
        id_field="marketoGUID",
        dedupe_fields=spec.dedupe_fields,
        searchable_fields=_searchable(base, fields),
        fields=fields,
        default_fields=("marketoGUID", *spec.dedupe_fields, "updatedAt", "createdAt"),
        parents=tuple(
            ParentLink(rel.field, parent_kind[rel.related_object], rel.related_field)
            for rel in spec.relationships
        ),
        relationships=tuple(
            {
                "field": rel.field,
                "type": "parent",
                "relatedTo": {"name": rel.related_object, "field": rel.related_field},
            }
            for rel in spec.relationships
        ),
    )
