"""Applying a page's write outcomes: one decision per record, and nothing invented."""

from __future__ import annotations

from shared.sync.apply import (
    DUPLICATE_TARGET_CODE,
    OpKind,
    PlannedWrite,
    apply_outcomes,
    recreate_writes,
)
from shared.sync.pipeline import WriteOutcome, WriteStatus

CREATED = WriteOutcome(WriteStatus.CREATED, "100")
GONE = WriteOutcome(WriteStatus.SKIPPED, None, "1004", "Lead not found")
REFUSED = WriteOutcome(WriteStatus.SKIPPED, None, "1003", "Invalid value")


def missing(outcome: WriteOutcome) -> bool:
    return outcome.code == "1004"


def create(source_id: str) -> PlannedWrite:
    return PlannedWrite(OpKind.CREATE, source_id, {"k": source_id}, digest="d", version="7")


def test_answered_creates_become_links_and_unanswered_ones_nothing() -> None:
    """Defect 1: the outcomes of the batches answered before a failure still count; a write
    never answered is neither a success nor a failure (the replay sends it again)."""
    applied = apply_outcomes([create("a"), create("b")], [CREATED, None], missing)
    assert [(link.source_id, link.target_id) for link in applied.links] == [("a", "100")]
    assert applied.failures == [] and applied.succeeded == ["a"]
    assert applied.counts.created == 1


def test_two_records_resolved_to_one_target_record_are_one_link_and_one_error() -> None:
    """Defect 5: the second record that Marketo merged into the same record is a per-record
    failure naming the first, not an exception that poisons the job."""
    applied = apply_outcomes([create("a"), create("b")], [CREATED, CREATED], missing)
    assert [link.source_id for link in applied.links] == ["a"]
    [failure] = applied.failures
    assert (failure.source_id, failure.code) == ("b", DUPLICATE_TARGET_CODE)
    assert "a" in failure.message
    later = apply_outcomes([create("c")], [CREATED], missing, owners={"100": "a"})
    assert later.links == [] and later.failures[0].code == DUPLICATE_TARGET_CODE


def test_an_update_of_a_record_the_target_lost_is_recreated_whole() -> None:
    """A partial update answered "not found" becomes a create of the whole record."""
    update = PlannedWrite(OpKind.UPDATE, "a", {"k": "a", "phone": "1"}, "55",
                          full_payload={"k": "a", "phone": "1", "name": "Acme"})  # fmt: skip
    applied = apply_outcomes([update], [GONE], missing)
    assert applied.recreate == [update] and applied.failures == []
    [again] = recreate_writes(applied.recreate, lambda p: {k: "h" for k in p})
    assert (again.kind, again.target_id, dict(again.payload)) == (
        OpKind.CREATE, None, {"k": "a", "phone": "1", "name": "Acme"})  # fmt: skip
    assert again.field_hashes == {"k": "h", "phone": "h", "name": "h"}


def test_an_upsert_that_made_the_record_anew_moves_the_link() -> None:
    """A whole-record upsert answered with another id: the mapping follows the new record."""
    update = PlannedWrite(OpKind.UPDATE, "a", {"k": "a"}, "55")
    applied = apply_outcomes([update], [WriteOutcome(WriteStatus.CREATED, "77")], missing)
    assert [(link.source_id, link.target_id) for link in applied.links] == [("a", "77")]
    assert applied.updates == []


def test_delete_marks_by_mapping_and_by_key() -> None:
    """A mark on a record the target no longer has is still done; a mark found by key (no
    mapping) that finds nothing is simply nothing to do; a refused mark is a failure."""
    by_id = PlannedWrite(OpKind.MARK_DELETED, "a", {"deleted": True}, "55")
    by_key = PlannedWrite(OpKind.MARK_DELETED, "b", {"k": "b", "deleted": True}, None)
    refused = PlannedWrite(OpKind.MARK_DELETED, "c", {"k": "c", "deleted": True}, None)
    applied = apply_outcomes([by_id, by_key, refused], [GONE, GONE, REFUSED], missing)
    assert [(u.source_id, u.deleted) for u in applied.updates] == [("a", True)]
    assert applied.counts.deleted == 1 and applied.counts.ignored == 1
    assert [(f.source_id, f.code) for f in applied.failures] == [("c", "1003")]
    assert applied.succeeded == ["a", "b"]
