"""The field mapping against both systems' schemas: which columns and fields are missing.

A mapping that names a column Dynamics does not have, or a field Marketo does not have, would
fail every record of its entity one by one; instead the validate checklist
(:mod:`shared.validation.checklist`), run by the app at start and by ``dmsync validate``, names
each entity and field at fault, both sides at once.
"""

from __future__ import annotations

import logging
from collections.abc import Set

from shared.sync.config import EntitySpec, SyncConfig, TargetKind
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
