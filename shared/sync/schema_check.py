"""Check the field mapping against both systems' schemas before anything is synced.

A mapping that names a column Dynamics does not have, or a field Marketo does not have, would
fail every record of its entity one by one; instead the app refuses to start and names each
entity and field at fault (both sides' problems in one message).
"""

from __future__ import annotations

from shared.dynamics.client import DynamicsClient
from shared.errors import ConfigurationError
from shared.marketo.client import MarketoClient
from shared.sync.adapters import MarketoTarget
from shared.sync.config import EntitySpec, SyncConfig, TargetKind

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


def marketo_problems(name: str, spec: EntitySpec, fields: set[str]) -> list[str]:
    """Fields ``spec`` writes that the Marketo object does not have."""
    target = spec.object_name or spec.target.value
    return [
        f"entity {name!r}: Marketo field {field!r} does not exist on {target}"
        for field in sorted(spec.marketo_fields() - MARKETO_WRITE_ONLY_KEYS)
        if field not in fields
    ]


async def check_schemas(
    config: SyncConfig, dynamics: DynamicsClient, marketo: MarketoClient
) -> None:
    """Raise one ConfigurationError naming every mapping problem on either side."""
    problems: list[str] = []
    lead_fields: set[str] | None = None
    target = MarketoTarget(marketo)
    described: dict[str, set[str]] = {}
    for name in config.order:
        spec = config.entity[name]
        definition = await dynamics.table_definition(spec.table)
        if definition.table.entity_set != spec.entity_set:
            problems.append(
                f"entity {name!r}: table {spec.table!r} has entity set "
                f"{definition.table.entity_set!r}, not {spec.entity_set!r}"
            )
        problems.extend(dynamics_problems(name, spec, set(definition.attributes)))
        if spec.target is TargetKind.LEAD:
            if lead_fields is None:
                lead_fields = {f.api_name for f in await marketo.leads.describe() if f.api_name}
            problems.extend(marketo_problems(name, spec, lead_fields))
        else:
            key = spec.object_name or spec.target.value
            if key not in described:
                description = await target.objects_api(spec).describe()
                described[key] = description.field_names()
            problems.extend(marketo_problems(name, spec, described[key]))
    if problems:
        raise ConfigurationError(
            "the field mapping does not match the systems' schemas: " + "; ".join(problems)
        )
