"""Which fields of an update to send, and who wins a field both sides changed: pure, no I/O.

The memory is per field: for each target field, a fingerprint of the value this sync last
wrote there (:func:`shared.sync.values.fingerprint`). An update sends only the fields whose
source value changed since that write, so a field edited on the target side alone survives an
unrelated source change.

A field is *contested* when its source value changed and the target no longer holds what was
written (someone changed it there too). The entity's rule decides:

* ``dynamics_wins``: the Dynamics value is written whatever the other side did;
* ``marketo_wins``: the Marketo value stays (the field is not sent, and its memory keeps the
  old fingerprint so the next Dynamics change of it is still recognised).

Which of the two is the *source* depends on the direction; :func:`target_wins` resolves it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from shared.jobs import Direction
from shared.sync.values import changed_since, fingerprints, holds_written


class ConflictRule(StrEnum):
    """Who wins a field changed on both sides since the last sync."""

    DYNAMICS_WINS = "dynamics_wins"
    MARKETO_WINS = "marketo_wins"


def target_wins(rule: ConflictRule | str, direction: Direction) -> bool:
    """Whether, writing in ``direction``, a contested field keeps the target's value."""
    rule = ConflictRule(rule)
    if direction is Direction.DYNAMICS_TO_MARKETO:
        return rule is ConflictRule.MARKETO_WINS
    return rule is ConflictRule.DYNAMICS_WINS


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
