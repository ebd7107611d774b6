"""Check the field mapping against both systems' schemas before anything is synced.

A mapping that names a column Dynamics does not have, or a field Marketo does not have, would
fail every record of its entity one by one; instead the app refuses to start and names each
entity and field at fault (both sides' problems in one message).
"""

from __future__ import annotations

import logging
from collections.abc import Set

from shared.dynamics.client import DynamicsClient
from shared.errors import ConfigurationError, DmsyncError
from shared.marketo.client import MarketoClient
from shared.sync.config import SYNC_FILTER_COLUMN, EntitySpec, SyncConfig, TargetKind
from shared.sync.d2m.writer import MarketoRecordWriter
from shared.sync.transform import UNMARKABLE

log = logging.getLogger("dmsync.schema")

MARKETO_WRITE_ONLY_KEYS = frozenset({"id", "marketoGUID"})
"""Fields the sync may send that describe calls do not list as writable fields."""


def dynamics_problems(name: str, spec: EntitySpec, attributes: set[str]) -> list[str]:
    """Columns of ``spec`` missing from the table (``_x_value`` is lookup column ``x``)."""
    problems = []
    for column in spec.dynamics_columns():
        logical = column
        if column.startswith("_") and column.endswith("_value"):
            logical = column[1 : -len("_value")]
        if logical not in attributes:
            problems.append(
                f"entity {name!r}: Dynamics column {column!r} does not exist on table "
                f"{spec.table!r}"
            )
    return problems


def marketo_problems(
    name: str, spec: EntitySpec, fields: set[str], markers: Set[str] = frozenset()
) -> list[str]:
    """Fields ``spec`` writes (plus the sync's own ``markers``) that the object does not have."""
    target = spec.object_name or spec.target.value
    written = (spec.marketo_fields() | markers) - MARKETO_WRITE_ONLY_KEYS
    return [
        f"entity {name!r}: Marketo field {field!r} does not exist on {target}"
        for field in sorted(written)
        if field not in fields
    ]


def sync_markers(config: SyncConfig, spec: EntitySpec) -> set[str]:
    """The Marketo fields the sync itself writes on ``spec``'s records (type, deleted mark)."""
    if spec.target is TargetKind.LEAD:
        return {config.person.dynamics_type, config.person.is_deleted}
    if spec.target in UNMARKABLE or config.objects.is_deleted is None:
        return set()
    return {config.objects.is_deleted}


async def check_schemas(
    config: SyncConfig, dynamics: DynamicsClient, marketo: MarketoClient
) -> SyncConfig:
    """Check the mapping against both schemas; return the configuration to run.

    Every problem on either side is collected and raised as one ConfigurationError: a table
    that is missing or has no change tracking, a mapped column or field that does not exist.
    A table without the sync-filter column ``new_synctomkto`` is not a problem: Marketo's rule
    is that a missing field means "sync" (reference A.4), so the filter is switched off for
    that entity in the configuration returned.
    """
    problems: list[str] = []
    lead_fields: set[str] | None = None
    target = MarketoRecordWriter(marketo)
    described: dict[str, set[str]] = {}
    unfiltered: list[str] = []
    try:
        definitions = await dynamics.table_definitions(
            [config.entity[name].table for name in config.order]
        )
    except DmsyncError as exc:
        raise ConfigurationError(f"the mapped Dynamics tables cannot be read: {exc}") from None
    for name in config.order:
        spec = config.entity[name]
        definition = definitions.get(spec.table)
        if definition is None:
            problems.append(
                f"entity {name!r}: Dynamics has no table with the logical name {spec.table!r}"
            )
            continue
        if definition.table.entity_set != spec.entity_set:
            problems.append(
                f"entity {name!r}: table {spec.table!r} has entity set "
                f"{definition.table.entity_set!r}, not {spec.entity_set!r}"
            )
        if definition.change_tracking_enabled is False:
            problems.append(
                f"entity {name!r}: change tracking is not enabled on Dynamics table "
                f'{spec.table!r} (turn on "Track changes" for the table)'
            )
        attributes = set(definition.attributes)
        if spec.sync_filter and SYNC_FILTER_COLUMN not in attributes:
            unfiltered.append(name)
            spec = spec.model_copy(update={"sync_filter": False})
        problems.extend(dynamics_problems(name, spec, attributes))
        if spec.target is TargetKind.LEAD:
            if lead_fields is None:
                lead_fields = {f.api_name for f in await marketo.leads.describe() if f.api_name}
            problems.extend(marketo_problems(name, spec, lead_fields, sync_markers(config, spec)))
        else:
            key = spec.object_name or spec.target.value
            if key not in described:
                description = await target.objects_api(spec).describe()
                described[key] = description.field_names()
            problems.extend(
                marketo_problems(name, spec, described[key], sync_markers(config, spec))
            )
    if problems:
        raise ConfigurationError(
            "the field mapping does not match the systems' schemas: " + "; ".join(problems)
        )
    if not unfiltered:
        return config
    log.info(
        "no %s column on %s: every record of these entities syncs (reference A.4)",
        SYNC_FILTER_COLUMN,
        ", ".join(unfiltered),
    )
    entities = {
        name: spec.model_copy(update={"sync_filter": False}) if name in unfiltered else spec
        for name, spec in config.entity.items()
    }
    return config.model_copy(update={"entity": entities})
