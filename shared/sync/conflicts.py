"""Which fields of an update to send, and who wins a field both sides changed: pure, no I/O.

The memory is per field: for each target field, a fingerprint of the value this sync last
wrote there (:func:`shared.sync.values.fingerprint`). An update sends only the fields whose
source value changed since that write, so a field edited on the target side alone survives an
unrelated source change.

A field is *contested* when its source value changed and the target no longer holds what was
written (someone changed it there too). The field's rule (or its entity's) decides which side's
value stands (:func:`winner`):

* ``dynamics_wins`` / ``marketo_wins``: that side, whatever the other did;
* ``dynamics_unless_blank`` / ``marketo_unless_blank``: that side, unless its value is blank
  (``None`` or only spaces) and the other's is not;
* ``latest_wins``: the side that changed the record last (each side's own change time); when
  only one time is known, that side; when neither is, or they are equal, Dynamics (the system
  of record for the people it owns).

When the target wins, the field is not sent and its memory keeps the old fingerprint, so the
next source change of it is still recognised. Which side is the *source* depends on the
direction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from shared.jobs import Direction
from shared.sync.values import changed_since, fingerprints, holds_written


class ConflictRule(StrEnum):
    """Who wins a field changed on both sides since the last sync."""

    DYNAMICS_WINS = "dynamics_wins"
    MARKETO_WINS = "marketo_wins"
    DYNAMICS_UNLESS_BLANK = "dynamics_unless_blank"
    MARKETO_UNLESS_BLANK = "marketo_unless_blank"
    LATEST_WINS = "latest_wins"


class Side(StrEnum):
    """One of the two systems."""

    DYNAMICS = "dynamics"
    MARKETO = "marketo"


@dataclass(frozen=True, slots=True)
class SideValue:
    """One side's value of a contested field, and when that side last changed the record."""

    value: Any
    changed_at: datetime | None = None


def is_blank(value: Any) -> bool:
    """``None``, or text of spaces only."""
    return value is None or (isinstance(value, str) and not value.strip())


def winner(rule: ConflictRule | str, dynamics: SideValue, marketo: SideValue) -> Side:
    """Whose value of a contested field stands (see the module docstring)."""
    rule = ConflictRule(rule)
    if rule is ConflictRule.DYNAMICS_WINS:
        return Side.DYNAMICS
    if rule is ConflictRule.MARKETO_WINS:
        return Side.MARKETO
    if rule is ConflictRule.DYNAMICS_UNLESS_BLANK:
        blank = is_blank(dynamics.value) and not is_blank(marketo.value)
        return Side.MARKETO if blank else Side.DYNAMICS
    if rule is ConflictRule.MARKETO_UNLESS_BLANK:
        blank = is_blank(marketo.value) and not is_blank(dynamics.value)
        return Side.DYNAMICS if blank else Side.MARKETO
    if marketo.changed_at is not None and (
        dynamics.changed_at is None or marketo.changed_at > dynamics.changed_at
    ):
        return Side.MARKETO
    return Side.DYNAMICS


def source_of(direction: Direction) -> Side:
    """The side a direction reads from."""
    return Side.DYNAMICS if direction is Direction.DYNAMICS_TO_MARKETO else Side.MARKETO


def source_always_wins(rule: ConflictRule | str, direction: Direction) -> bool:
    """Whether ``rule`` lets the source win without looking at the target (no read needed)."""
    always = {
        Side.DYNAMICS: ConflictRule.DYNAMICS_WINS,
        Side.MARKETO: ConflictRule.MARKETO_WINS,
    }
    return ConflictRule(rule) is always[source_of(direction)]


def target_wins(rule: ConflictRule | str, direction: Direction) -> bool:
    """Whether ``rule`` always keeps the target's value of a contested field."""
    always = {
        Side.DYNAMICS: ConflictRule.MARKETO_WINS,
        Side.MARKETO: ConflictRule.DYNAMICS_WINS,
    }
    return ConflictRule(rule) is always[source_of(direction)]


def target_keeps(
    rule: ConflictRule | str, direction: Direction, source: SideValue, target: SideValue
) -> bool:
    """Whether a contested field keeps the target's value when writing in ``direction``."""
    if source_of(direction) is Side.DYNAMICS:
        return winner(rule, source, target) is Side.MARKETO
    return winner(rule, target, source) is Side.DYNAMICS


@dataclass(frozen=True, slots=True)
class FieldPlan:
    """An update's fields to send and the per-field memory to store once it is written."""

    send: dict[str, Any]
    memory: dict[str, str]
    whole: bool
    """There was no usable memory: the whole record is sent."""


def plan_fields(payload: Mapping[str, Any], written: Mapping[str, str] | None) -> FieldPlan:
    """The fields of ``payload`` that changed since they were written (all without memory)."""
    now = fingerprints(payload)
    if written is None:
        return FieldPlan(dict(payload), now, whole=True)
    send = {
        name: value for name, value in payload.items() if changed_since(written.get(name), value)
    }
    memory = {**written, **{name: now[name] for name in send}}
    return FieldPlan(send, memory, whole=False)


def contested(
    plan: FieldPlan, written: Mapping[str, str], target_now: Mapping[str, Any]
) -> list[str]:
    """The fields about to be sent whose target value is no longer the one written."""
    return [
        name for name in plan.send if not holds_written(written.get(name), target_now.get(name))
    ]


def keep_target_values(plan: FieldPlan, written: Mapping[str, str], fields: list[str]) -> FieldPlan:
    """``plan`` without ``fields`` (the target keeps them; their memory stays as written)."""
    send = {k: v for k, v in plan.send.items() if k not in fields}
    memory = dict(plan.memory)
    for name in fields:
        before = written.get(name)
        if before is not None:
            memory[name] = before
    return FieldPlan(send, memory, plan.whole)
