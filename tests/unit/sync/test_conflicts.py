"""Per-field memory and conflict rules: only changed fields are sent; the rule settles the rest."""

from __future__ import annotations

import pytest

from shared.jobs import Direction
from shared.sync.conflicts import contested, keep_target_values, plan_fields, target_wins
from shared.sync.values import fingerprints

D2M, M2D = Direction.DYNAMICS_TO_MARKETO, Direction.MARKETO_TO_DYNAMICS


@pytest.mark.parametrize(
    ("rule", "direction", "expected"),
    [("dynamics_wins", D2M, False), ("marketo_wins", D2M, True),
     ("dynamics_wins", M2D, True), ("marketo_wins", M2D, False)],
)  # fmt: skip
def test_which_side_wins_depends_on_the_rule_and_the_direction(
    rule: str, direction: Direction, expected: bool
) -> None:
    assert target_wins(rule, direction) is expected


def test_without_memory_the_whole_record_is_sent() -> None:
    plan = plan_fields({"a": 1, "b": 2}, None)
    assert (plan.send, plan.whole) == ({"a": 1, "b": 2}, True)


def test_only_fields_changed_since_the_last_write_are_sent() -> None:
    written = fingerprints({"a": 1, "b": 2})
    plan = plan_fields({"a": 1, "b": 3}, written)
    assert plan.send == {"b": 3} and not plan.whole
    assert plan.memory == fingerprints({"a": 1, "b": 3})


def test_a_field_changed_on_both_sides_keeps_the_target_value_when_the_target_wins() -> None:
    """The target no longer holds what was written to ``b``: contested; the target keeps it and
    the memory keeps the old fingerprint, so the next source change is still recognised."""
    written = fingerprints({"a": 1, "b": 2})
    plan = plan_fields({"a": 5, "b": 3}, written)
    fields = contested(plan, written, {"a": 1, "b": 9})
    assert fields == ["b"]
    kept = keep_target_values(plan, written, fields)
    assert kept.send == {"a": 5}
    assert kept.memory["b"] == written["b"]
