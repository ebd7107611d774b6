"""What ``dmsync reconcile`` (and ``dmsync demo``) print: the reconciliation and the sync errors.

Pure: built from a :class:`~shared.sync.reconcile.ReconciliationReport` and the open sync errors
already read. Record ids and field names are shown; field values never are (they may be personal
data): error messages are passed through :func:`safe_message`, which withholds quoted values and
redacts e-mail addresses and secrets.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from shared.state.sync_errors import PENDING_CODE, SyncError
from shared.sync.reconcile import EntityReconciliation, ReconciliationReport
from shared.telemetry.logs import redact

SHOWN_IDS = 5
"""Record ids listed per line of text output (JSON lists them all)."""

_QUOTED_VALUE = re.compile(r"(?i)(\bvalues?\s*)'[^']*'")
"""``value '...'`` as in Marketo's 1001 "Invalid value '<the value>'. Required of type ..."."""
_VALUE_AFTER_COLON = re.compile(r"(?i)(\bvalue\s*:\s*)\S+")

WITHHELD = "'[value withheld]'"

CODE_MEANINGS: dict[str, str] = {
    PENDING_CODE: "waiting for a linked record to reach Marketo; retried on later runs",
    "1001": "type mismatch: Marketo refused a field value (e.g. an invalid e-mail address)",
    "1002": "missing value: a required field or key was empty",
    "1003": "invalid data",
    "1004": "lead not found",
    "1006": "field not found in Marketo",
    "1007": "more than one Marketo lead matches",
    "1013": "object or record not found (e.g. a parent record)",
    "1018": "refused: a native CRM integration is enabled on the Marketo instance",
    "1021": "company update not allowed on a person (company fields come from the company)",
    "1036": "duplicate object in one request",
    "413": "the record alone is larger than Marketo's 1 MB request limit",
}
"""Plain-language meaning of the codes a demo or operator meets most (Marketo error codes,
reference B; ``DEPENDENCY_PENDING`` is the sync's own)."""


def safe_message(message: str) -> str:
    """``message`` without field values, e-mail addresses or secrets."""
    text = _QUOTED_VALUE.sub(lambda m: m.group(1) + WITHHELD, message)
    text = _VALUE_AFTER_COLON.sub(lambda m: m.group(1) + "[value withheld]", text)
    return redact(text)


@dataclass(frozen=True)
class ErrorGroup:
    """The open sync errors of one entity that share a code."""

    entity: str
    code: str
    operations: tuple[str, ...]
    sample_message: str
    record_ids: tuple[str, ...]

    @property
    def count(self) -> int:
        """How many records have this error."""
        return len(self.record_ids)

    @property
    def meaning(self) -> str | None:
        """What the code means, when it is a well-known one."""
        return CODE_MEANINGS.get(self.code)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "code": self.code,
            "count": self.count,
            "operations": list(self.operations),
            "meaning": self.meaning,
            "sample_message": self.sample_message,
            "record_ids": list(self.record_ids),
        }


def group_errors(errors: Iterable[SyncError]) -> dict[str, list[ErrorGroup]]:
    """Open errors per entity, grouped by code (largest group first).

    The sample message is the first (newest) error's, made safe with :func:`safe_message`.
    """
    buckets: dict[tuple[str, str], list[SyncError]] = {}
    for error in errors:
        if error.resolved:
            continue
        buckets.setdefault((error.stream.entity, error.code), []).append(error)
    grouped: dict[str, list[ErrorGroup]] = {}
    for (entity, code), members in buckets.items():
        grouped.setdefault(entity, []).append(
            ErrorGroup(
                entity=entity,
                code=code,
                operations=tuple(sorted({e.operation for e in members})),
                sample_message=safe_message(members[0].message),
                record_ids=tuple(sorted(e.record_id[1] for e in members)),
            )
        )
    for groups in grouped.values():
        groups.sort(key=lambda g: (-g.count, g.code))
    return grouped


@dataclass
class ReconcileResult:
    """A reconciliation and the open sync errors that explain what it did not find."""

    instance_id: str
    report: ReconciliationReport
    errors: dict[str, list[ErrorGroup]] = field(default_factory=dict)

    @property
    def holds(self) -> bool:
        """Whether the reconciliation holds (see :mod:`shared.sync.reconcile`)."""
        return self.report.holds

    def to_json(self) -> dict[str, Any]:
        """The whole result as JSON-ready data."""
        return {
            "instance": self.instance_id,
            "holds": self.holds,
            "entities": [
                {**entity_json(e), "errors": [g.to_json() for g in self.errors.get(e.entity, [])]}
                for e in self.report.entities
            ],
        }

    def render(self) -> str:
        """The text report: the table, the sync errors, what failed, and the verdict."""
        parts = [f"Reconciliation of instance {self.instance_id}", self.report.table()]
        parts.append(render_errors(self.errors, [e.entity for e in self.report.entities]))
        problems = render_problems(self.report.entities)
        if problems:
            parts.append(problems)
        parts.append(verdict(self.report))
        return "\n\n".join(parts)


def entity_json(entity: EntityReconciliation) -> dict[str, Any]:
    """One entity's comparison as JSON-ready data (ids and field names only)."""
    return {
        "entity": entity.entity,
        "holds": entity.holds,
        "in_dynamics": entity.in_dynamics,
        "expected_in_marketo": entity.expected,
        "found_in_marketo": entity.found,
        "missing": sorted(entity.missing),
        "mismatched": {k: sorted(v) for k, v in sorted(entity.mismatched.items())},
        "duplicates": sorted(entity.duplicates),
        "deleted_in_dynamics": entity.deleted,
        "deleted_unmarked": sorted(entity.deleted_unmarked),
        "explained_by_sync_error": sorted(entity.errored),
        "pending": sorted(entity.pending),
    }


def _ids(ids: Sequence[str]) -> str:
    shown = ", ".join(ids[:SHOWN_IDS])
    more = len(ids) - SHOWN_IDS
    return shown + (f" (+{more} more)" if more > 0 else "")


def render_errors(errors: dict[str, list[ErrorGroup]], order: Sequence[str]) -> str:
    """Per entity, the open sync errors by code: count, meaning, a sample message, record ids."""
    if not any(errors.values()):
        return "Sync errors: none open."
    lines = ["Sync errors (open), per entity and code:"]
    entities = [*order, *sorted(set(errors) - set(order))]
    for entity in entities:
        groups = errors.get(entity)
        if not groups:
            continue
        lines.append(f"  {entity}: {sum(g.count for g in groups)} record(s)")
        for group in groups:
            meaning = f" — {group.meaning}" if group.meaning else ""
            lines.append(
                f"    {group.code} × {group.count} ({', '.join(group.operations)}){meaning}"
            )
            lines.append(f"      e.g. {group.sample_message}")
            lines.append(f"      records: {_ids(group.record_ids)}")
    return "\n".join(lines)


def render_problems(entities: Iterable[EntityReconciliation]) -> str:
    """What breaks the reconciliation, per entity (empty when it holds)."""
    lines: list[str] = []
    for e in entities:
        if e.holds:
            continue
        lines.append(f"  {e.entity}:")
        if e.missing:
            lines.append(f"    missing in Marketo, no sync error: {_ids(sorted(e.missing))}")
        for dynamics_id, fields in sorted(e.mismatched.items())[:SHOWN_IDS]:
            lines.append(f"    mismatched {dynamics_id}: {', '.join(sorted(fields))}")
        if len(e.mismatched) > SHOWN_IDS:
            lines.append(f"    (+{len(e.mismatched) - SHOWN_IDS} more mismatched records)")
        if e.duplicates:
            lines.append(f"    more than one Marketo record: {_ids(sorted(e.duplicates))}")
        if e.deleted_unmarked:
            unmarked = _ids(sorted(e.deleted_unmarked))
            lines.append(f"    deleted in Dynamics, not marked in Marketo: {unmarked}")
    return "What does not hold:\n" + "\n".join(lines) if lines else ""


def verdict(report: ReconciliationReport) -> str:
    """One line: does it hold, and what that means."""
    if report.holds:
        return (
            "RESULT: the reconciliation holds: every record expected in Marketo is there or has "
            "an open sync error that says why; no mismatched fields, duplicates or unmarked "
            "deletes."
        )
    failed = [e.entity for e in report.entities if not e.holds]
    return f"RESULT: the reconciliation does NOT hold for: {', '.join(failed)}."
