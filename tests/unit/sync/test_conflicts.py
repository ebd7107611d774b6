"""Per-field memory and conflict rules: only changed fields are sent; the rule settles the rest."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.errors import ConfigurationError
from shared.jobs import Direction
from shared.sync.config import DEFAULT_MAPPING_FILE, parse_config
from shared.sync.conflicts import (
    Side,
    SideValue,
    contested,
    keep_target_values,
    plan_fields,
    source_always_wins,
    target_keeps,
    target_wins,
    winner,
)
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


@pytest.mark.parametrize(
    ("rule", "dynamics", "marketo", "expected"),
    [
        ("dynamics_wins", "D", "M", "dynamics"),
        ("marketo_wins", "D", "M", "marketo"),
        ("dynamics_unless_blank", "D", "M", "dynamics"),
        ("dynamics_unless_blank", None, "M", "marketo"),
        ("dynamics_unless_blank", "  ", None, "dynamics"),  # both blank: the named side
        ("marketo_unless_blank", "D", "M", "marketo"),
        ("marketo_unless_blank", "D", "", "dynamics"),
    ],
)
def test_each_rule_picks_its_side(
    rule: str, dynamics: object, marketo: object, expected: str
) -> None:
    assert winner(rule, SideValue(dynamics), SideValue(marketo)).value == expected


def test_latest_wins_by_each_sides_change_time() -> None:
    """The later change wins; a known time beats an unknown one; a tie goes to Dynamics."""
    early, late = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC)
    assert winner("latest_wins", SideValue("D", early), SideValue("M", late)) is Side.MARKETO
    assert winner("latest_wins", SideValue("D", late), SideValue("M", early)) is Side.DYNAMICS
    assert winner("latest_wins", SideValue("D", None), SideValue("M", early)) is Side.MARKETO
    assert winner("latest_wins", SideValue("D", early), SideValue("M", early)) is Side.DYNAMICS
    assert winner("latest_wins", SideValue("D"), SideValue("M")) is Side.DYNAMICS


def test_target_keeps_reads_the_rule_from_the_writing_direction() -> None:
    source, target = SideValue("new"), SideValue("theirs")
    assert target_keeps("marketo_wins", D2M, source, target)
    assert not target_keeps("marketo_wins", M2D, source, target)
    assert source_always_wins("dynamics_wins", D2M) and source_always_wins("marketo_wins", M2D)
    assert not source_always_wins("latest_wins", D2M)


def test_an_unknown_rule_is_refused_when_the_mapping_is_loaded() -> None:
    text = DEFAULT_MAPPING_FILE.read_text(encoding="utf-8").replace(
        'conflicts = "marketo_wins"', 'conflicts = "whoever_shouts"', 1
    )
    with pytest.raises(ConfigurationError, match="conflicts"):
        parse_config(text, "mapping.toml")


def test_per_field_direction_and_rule_in_the_mapping_file() -> None:
    text = (
        'extends = "default"\n[entity.lead.fields.jobtitle]\nto = "title"\n'
        'conflict = "latest_wins"\n'
    )
    lead = parse_config(text, "mapping.toml").entity["lead"]
    assert lead.conflict_rule("title") == "latest_wins"
    assert lead.conflict_rule("firstName") == "marketo_wins"
    assert "modifiedon" in lead.dynamics_columns()


def test_a_field_can_flow_back_only_on_a_two_way_entity() -> None:
    text = 'extends = "default"\n[entity.account.fields.name]\nto = "company"\ndirection = "both"\n'
    with pytest.raises(ConfigurationError, match="two_way"):
        parse_config(text, "mapping.toml")
