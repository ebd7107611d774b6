"""The sync configuration: which entities sync, where to, and how their fields map.

Each entity is declared once, as data: its Dataverse table, the Marketo object it becomes, the key
that identifies it there, its field mapping, its links to other entities (owner, company, ...),
an optional row filter, and whether the ``new_synctomkto`` sync filter applies. The engine has no
code path per entity.

The shipped default (``default_mapping.toml`` beside this module) follows Marketo's documented
default Dynamics field mapping (reference A.6). Users replace it with their own file through the
``SYNC_MAPPING_FILE`` setting, to add a custom field or drop one without code; the file is
validated here (shape) and against both systems' schemas at start (``shared.sync.schema_check``),
and every problem is reported with the entity and field that cause it.
"""

from __future__ import annotations

import tomllib
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from shared.errors import ConfigurationError

DEFAULT_MAPPING_FILE = Path(__file__).with_name("default_mapping.toml")


class TargetKind(StrEnum):
    """The kinds of Marketo object a Dynamics entity can become."""

    LEAD = "lead"
    COMPANY = "company"
    OPPORTUNITY = "opportunity"
    OPPORTUNITY_ROLE = "opportunity_role"
    SALES_PERSON = "sales_person"
    CUSTOM_OBJECT = "custom_object"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


ConflictRuleName = Literal[
    "dynamics_wins", "marketo_wins", "dynamics_unless_blank", "marketo_unless_blank", "latest_wins"
]
"""The conflict rules (:class:`shared.sync.conflicts.ConflictRule`); any other name is refused."""
FieldDirection = Literal["both", "to_marketo", "to_dynamics"]
"""Which way a field's values flow."""


class FieldSpec(_Strict):
    """One Dynamics column ↔ one Marketo field, with an optional value translation."""

    to: str = Field(min_length=1)
    values: dict[str, str | int | float | bool | None] | None = None
    """Maps the Dynamics value (as text, e.g. option-set numbers ``"0"``) to the Marketo value."""
    direction: FieldDirection | None = None
    """``both``, ``to_marketo`` or ``to_dynamics`` (Marketo's own fields written back, e.g. a
    score). Unset: ``both`` for an entity that syncs both ways, else ``to_marketo``."""
    conflict: ConflictRuleName | None = None
    """This field's conflict rule, overriding the entity's."""


class LinkSpec(_Strict):
    """A lookup column whose target must already be in Marketo (owner, company, ...).

    ``columns`` are tried in order (e.g. an opportunity's ``_parentaccountid_value`` then
    ``_customerid_value``); the first whose id belongs to one of ``entities`` gives the value.
    ``value`` says what is written: the Dynamics id (Marketo external ids such as
    ``externalCompanyId`` hold it) or the Marketo id from the ID mapping (``leadId`` of a role).
    A ``required`` link holds the record back until its target is synced; an optional one lets
    the record go without the link and re-sends the link once the target arrives.
    """

    columns: tuple[str, ...] = Field(min_length=1)
    to: str = Field(min_length=1)
    entities: tuple[str, ...] = Field(min_length=1)
    value: Literal["dynamics_id", "marketo_id"] = "dynamics_id"
    required: bool = False
    replaces: tuple[str, ...] = ()
    """Marketo fields the linked record provides: dropped from the payload while the link is
    set (a person linked to a company takes its company name from the company; Marketo refuses
    company fields on such a person with 1021)."""


class LookupSpec(_Strict):
    """A lookup resolved to a column of a small reference table (e.g. a connection role's name)."""

    column: str = Field(min_length=1)
    to: str = Field(min_length=1)
    table: str = Field(min_length=1)
    entity_set: str = Field(min_length=1)
    key: str = Field(min_length=1)
    field: str = Field(min_length=1)


class EntitySpec(_Strict):
    """One synced Dynamics entity."""

    table: str = Field(min_length=1, description="the Dataverse logical name, e.g. contact")
    entity_set: str = Field(min_length=1, description="the Web API entity set, e.g. contacts")
    primary_key: str = Field(min_length=1)
    target: TargetKind
    object_name: str | None = None
    """The custom object's API name (``customobjects/{name}``); only for custom objects."""
    key_field: str | None = Field(default=None, min_length=1)
    """The Marketo field holding the Dynamics id (the dedupe key), e.g. ``externalPersonId``;
    none for opportunity roles, whose dedupe key is built from their links."""
    person_type: Literal["Lead", "Contact"] | None = None
    """For persons: the value written to the Dynamics-type field (Marketo's "Microsoft Type")."""
    sync_filter: bool = False
    """Whether the ``new_synctomkto`` column decides if a record syncs (reference A.4)."""
    depends_on: tuple[str, ...] = ()
    """Entities whose initial sync must finish before this one's starts."""
    where: dict[str, str | int | bool] = Field(default_factory=dict)
    """Only rows whose columns equal these values sync (filtered after reading: Dataverse
    refuses ``$filter`` on change-tracking reads, reference §1)."""
    fields: dict[str, str | FieldSpec] = Field(default_factory=dict)
    links: dict[str, LinkSpec] = Field(default_factory=dict)
    lookups: dict[str, LookupSpec] = Field(default_factory=dict)
    constants: dict[str, str | int | bool] = Field(default_factory=dict)
    """Marketo fields set to a fixed value on every record."""
    conflicts: ConflictRuleName = "dynamics_wins"
    """Who wins a field changed on both sides since the last sync (design: Marketo for leads,
    Dynamics for contacts and every one-way entity). Only changed fields are ever sent, so a
    field changed in Marketo alone is never overwritten by an unrelated Dynamics change."""

    @model_validator(mode="after")
    def _consistent(self) -> EntitySpec:
        if (self.target is TargetKind.CUSTOM_OBJECT) != (self.object_name is not None):
            raise ValueError("object_name is required for, and only for, target custom_object")
        if self.person_type is not None and self.target is not TargetKind.LEAD:
            raise ValueError("person_type applies only to target lead")
        if self.key_field is None and self.target is not TargetKind.OPPORTUNITY_ROLE:
            raise ValueError("key_field is required (all targets but opportunity_role)")
        if self.two_way and self.person_type is None:
            raise ValueError("two_way applies only to persons (leads and contacts)")
        for column, spec in self.field_specs().items():
            if not self.two_way and spec.direction in ("both", "to_dynamics"):
                raise ValueError(
                    f"field {column}: direction {spec.direction} needs two_way = true "
                    "(only leads and contacts sync back to Dynamics)"
                )
        return self

    @property
    def updates_by_marketo_id(self) -> bool:
        """Known records are updated by their Marketo id rather than by the Dynamics key.

        Persons: the mapping is authoritative, so a Dynamics lead and contact that share an
        email stay two people. Roles: their compound key (opportunity, person, role) may change.
        """
        return self.target in (TargetKind.LEAD, TargetKind.OPPORTUNITY_ROLE)

    two_way: bool = False
    """Marketo changes of this entity's fields flow back to Dynamics (persons only)."""

    def field_specs(self) -> dict[str, FieldSpec]:
        """Every mapped column with its spec (plain strings expanded)."""
        return {
            column: spec if isinstance(spec, FieldSpec) else FieldSpec(to=spec)
            for column, spec in self.fields.items()
        }

    def direction_of(self, spec: FieldSpec) -> FieldDirection:
        """A field's effective direction."""
        if spec.direction is not None:
            return spec.direction
        return "both" if self.two_way else "to_marketo"

    def fields_to_marketo(self) -> dict[str, FieldSpec]:
        """The mapped columns whose values Dynamics → Marketo writes."""
        return {
            c: f for c, f in self.field_specs().items() if self.direction_of(f) != "to_dynamics"
        }

    def fields_to_dynamics(self) -> dict[str, FieldSpec]:
        """The mapped columns Marketo → Dynamics writes (empty for a one-way entity)."""
        if not self.two_way:
            return {}
        return {c: f for c, f in self.field_specs().items() if self.direction_of(f) != "to_marketo"}

    def conflict_rule(self, marketo_field: str) -> ConflictRuleName:
        """The rule for a Marketo field: the field's own, else the entity's."""
        for spec in self.field_specs().values():
            if spec.to == marketo_field and spec.conflict is not None:
                return spec.conflict
        return self.conflicts

    def marketo_fields(self) -> set[str]:
        """Every Marketo field this entity writes."""
        written = {spec.to for spec in self.field_specs().values()}
        written |= {link.to for link in self.links.values()}
        written |= {lookup.to for lookup in self.lookups.values()}
        written |= set(self.constants)
        if self.key_field is not None:
            written.add(self.key_field)
        return written

    def dynamics_columns(self) -> tuple[str, ...]:
        """The ``$select`` list: the primary key, mapped columns, link and filter columns."""
        columns = [self.primary_key, *self.fields]
        for link in self.links.values():
            columns.extend(link.columns)
        columns.extend(lookup.column for lookup in self.lookups.values())
        columns.extend(self.where)
        if self.sync_filter:
            columns.append(SYNC_FILTER_COLUMN)
        rules = {self.conflicts, *(f.conflict for f in self.field_specs().values())}
        if "latest_wins" in rules:
            columns.append("modifiedon")  # each side's change time decides
        return tuple(dict.fromkeys(columns))


SYNC_FILTER_COLUMN = "new_synctomkto"
"""The Two Options column whose value No (false) keeps a record out of the sync (reference A.4)."""


class PersonFields(_Strict):
    """Names of the Marketo person fields the sync itself maintains."""

    dynamics_type: str = "dynamicsType"
    is_deleted: str = "dynamicsIsDeleted"


class MarketoObjectFields(_Strict):
    """The field that marks a non-person Marketo record as deleted in Dynamics (if any)."""

    is_deleted: str | None = "dynamicsIsDeleted"


class SyncConfig(_Strict):
    """The whole configuration file."""

    version: Literal[1] = 1
    person: PersonFields = PersonFields()
    objects: MarketoObjectFields = MarketoObjectFields()
    entity: Annotated[dict[str, EntitySpec], Field(min_length=1)]

    @model_validator(mode="after")
    def _dependencies_known(self) -> SyncConfig:
        for name, spec in self.entity.items():
            for dependency in spec.depends_on:
                if dependency not in self.entity:
                    raise ValueError(f"entity {name!r} depends on unknown entity {dependency!r}")
            for link_name, link in spec.links.items():
                for target in link.entities:
                    if target not in self.entity:
                        raise ValueError(
                            f"entity {name!r} link {link_name!r} names unknown entity {target!r}"
                        )
        return self

    @cached_property
    def order(self) -> tuple[str, ...]:
        """Entities in dependency order (dependencies first; ties keep file order)."""
        from shared.sync.order import dependency_order

        return dependency_order({name: spec.depends_on for name, spec in self.entity.items()})


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``extra`` laid over ``base``: tables merge key by key, anything else is replaced."""
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def parse_config(text: str, source: str) -> SyncConfig:
    """Parse a TOML mapping document.

    A document with ``extends = "default"`` is laid over the shipped default: it only needs
    what it adds or changes (another entity, another field of an entity).

    Raises:
        ConfigurationError: naming the file, the entity and the field at fault.
    """
    try:
        raw: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"mapping file {source} is not valid TOML: {exc}") from None
    extends = raw.pop("extends", None)
    if extends is not None:
        if extends != "default":
            raise ConfigurationError(
                f'mapping file {source}: extends must be "default" (the shipped mapping)'
            )
        raw = _merge(tomllib.loads(DEFAULT_MAPPING_FILE.read_text(encoding="utf-8")), raw)
    try:
        return SyncConfig.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(file)'}: "
            f"{str(err['msg']).removeprefix('Value error, ')}"
            for err in exc.errors(include_input=False)
        )
        raise ConfigurationError(f"mapping file {source} is invalid: {problems}") from None


def load_config(path: str | Path | None = None) -> SyncConfig:
    """Load the mapping from ``path`` (``SYNC_MAPPING_FILE``) or the shipped default.

    Raises:
        ConfigurationError: the file is missing, unreadable or invalid.
    """
    file = Path(path) if path else DEFAULT_MAPPING_FILE
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(
            f"SYNC_MAPPING_FILE {file} cannot be read: {exc.strerror or exc}"
        ) from None
    config = parse_config(text, str(file))
    _ = config.order  # a dependency cycle is a configuration error at load time
    return config
