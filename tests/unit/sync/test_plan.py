"""Planning a page: each record lands in exactly one bucket, and only real changes cost calls."""

from __future__ import annotations

from shared.sync.plan import MappingView, plan_page
from shared.sync.transform import Decision, Prepared


def sync(dynamics_id: str, digest: str = "d1") -> Prepared:
    """A row that should be written."""
    return Prepared(dynamics_id, Decision.SYNC, payload={"k": dynamics_id}, digest=digest)


def test_unknown_records_are_created_known_ones_updated_by_their_marketo_id() -> None:
    """The mapping decides: no mapping → create by key; a mapping → update that Marketo id."""
    plan = plan_page([sync("a"), sync("b", "new")], [], {"b": MappingView("42", digest="old")})
    assert [p.dynamics_id for p in plan.create] == ["a"]
    assert [(p.dynamics_id, m) for p, m in plan.update] == [("b", "42")]
    assert plan.mark_deleted == [] and plan.unchanged == []


def test_identical_payload_costs_no_call() -> None:
    """Same digest as last written → unchanged (echo and no-op suppression)."""
    plan = plan_page([sync("a", "same")], [], {"a": MappingView("1", digest="same")})
    assert [p.dynamics_id for p in plan.unchanged] == ["a"]
    assert plan.create == [] and plan.update == [] and plan.mark_deleted == []


def test_a_record_marked_deleted_is_written_again_when_it_reappears() -> None:
    """Same digest but marked deleted (e.g. restored) → written, clearing the mark."""
    plan = plan_page([sync("a", "same")], [], {"a": MappingView("1", "same", deleted=True)})
    assert len(plan.update) == 1


def test_deletes_mark_synced_records_only_once() -> None:
    """A delete of a synced record marks it; of an unknown or already-marked one, nothing."""
    mappings = {"a": MappingView("1"), "c": MappingView("3", deleted=True)}
    plan = plan_page([], ["a", "b", "c"], mappings)
    assert plan.mark_deleted == [("a", "1")]
    assert sorted(plan.ignored) == ["b", "c"]


def test_delete_wins_over_a_row_for_the_same_id() -> None:
    """A record both listed and deleted in one page is treated as deleted."""
    plan = plan_page([sync("a")], ["a"], {"a": MappingView("1")})
    assert plan.mark_deleted == [("a", "1")]
    assert plan.update == []


def test_filter_flip_to_no_is_remembered_once() -> None:
    """Yes→No: recorded for a synced record; a never-synced or already-filtered one is ignored."""
    out = [Prepared(i, Decision.FILTERED_OUT) for i in ("a", "b", "c")]
    mappings = {"a": MappingView("1"), "c": MappingView("3", filtered_out=True)}
    plan = plan_page(out, [], mappings)
    assert plan.filtered == ["a"]
    assert sorted(plan.ignored) == ["b", "c"]
    assert plan.create == [] and plan.update == [] and plan.mark_deleted == []


def test_filter_flip_back_to_yes_syncs_again() -> None:
    """No→Yes: the record is written again even if its content is what Marketo has (Adobe, "Create a
    Custom Dynamics Sync Filter")."""
    plan = plan_page([sync("a", "d")], [], {"a": MappingView("1", "d", filtered_out=True)})
    assert [(p.dynamics_id, m) for p, m in plan.update] == [("a", "1")]


def test_held_and_duplicates() -> None:
    """Held rows wait; a row repeated in one page is planned once."""
    held = Prepared("h", Decision.HELD, pending_links=("role",))
    plan = plan_page([held, sync("a"), sync("a")], [], {})
    assert plan.held == [held]
    assert len(plan.create) == 1
