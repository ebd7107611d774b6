"""Turn a page's write outcomes into what the state store must learn: pure, no I/O.

Given the writes a pipeline sent (:class:`PlannedWrite`, in the order sent) and the target's
outcome for each (``None``: never answered, because the call failed before reaching it), this
step decides, per record, exactly one of:

* a new link (source id ↔ target id) with the memory of what was written;
* an update of an existing link's memory (fields written, a delete mark, a filter state);
* a per-record failure (operation, code, message) for the sync-error table;
* a recreate: the target no longer has a record the mapping names (deleted there), so the full
  record is written again as new;
* nothing, for a write never answered: the page is replayed and sends it again.

Two source records that the target resolved to the same target record (two stakeholder
connections with the same opportunity, contact and role) cannot both own it: the first keeps
the link, each later one becomes a per-record failure naming the first.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from shared.sync.pipeline import PageCounts, WriteOutcome

DUPLICATE_TARGET_CODE = "duplicate-target"
"""Sync-error code of a record the target merged into a record another source record owns."""


class OpKind(StrEnum):
    """Why a record is written."""

    CREATE = "create"
    UPDATE = "update"
    MARK_DELETED = "mark-deleted"


@dataclass(frozen=True, slots=True)
class PlannedWrite:
    """One record's write, with what to remember once the target accepts it."""

    kind: OpKind
    source_id: str
    payload: Mapping[str, Any]
    """What is sent."""
    target_id: str | None = None
    """The target id the mapping knows (updates, delete marks)."""
    digest: str | None = None
    """The digest of the record's whole payload after this write."""
    field_hashes: Mapping[str, str] | None = None
    """Per-field hashes of what the target holds after this write."""
    version: str | None = None
    """The source's version of the record written."""
    pending_links: bool = False
    """Links were left out (their targets are not synced yet): look at the record again."""
    full_payload: Mapping[str, Any] | None = None
    """The whole record, for a recreate when the target lost it (updates only)."""


@dataclass(frozen=True, slots=True)
class NewLink:
    """A source record now linked to a target record."""

    source_id: str
    target_id: str
    digest: str | None
    field_hashes: Mapping[str, str] | None
    version: str | None


@dataclass(frozen=True, slots=True)
class LinkUpdate:
    """What changes in an existing link's memory."""

    source_id: str
    digest: str | None = None
    field_hashes: Mapping[str, str] | None = None
    version: str | None = None
    deleted: bool | None = None
    filtered_out: bool | None = None


@dataclass(frozen=True, slots=True)
class Failure:
    """A record the target refused (or could not take)."""

    source_id: str
    target_id: str | None
    operation: str
    code: str
    message: str


@dataclass(slots=True)
class Applied:
    """Everything a page's outcomes teach the state store, ready for one persist call."""

    links: list[NewLink] = field(default_factory=list)
    updates: list[LinkUpdate] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    recreate: list[PlannedWrite] = field(default_factory=list)
    succeeded: list[str] = field(default_factory=list)
    """Source ids written (or found already right): their open sync errors are resolved."""
    pending: list[str] = field(default_factory=list)
    """Source ids to look at again later (a link still missing): not failures."""
    counts: PageCounts = field(default_factory=PageCounts)

    def extend(self, other: Applied) -> None:
        """Add another step's results (e.g. the recreates') to these."""
        self.links += other.links
        self.updates += other.updates
        self.failures += other.failures
        self.recreate += other.recreate
        self.succeeded += other.succeeded
        self.pending += other.pending
        merge_counts(self.counts, other.counts)


def merge_counts(into: PageCounts, other: PageCounts) -> None:
    """Add ``other``'s counters to ``into``."""
    into.read += other.read
    into.created += other.created
    into.updated += other.updated
    into.unchanged += other.unchanged
    into.deleted += other.deleted
    into.filtered += other.filtered
    into.held += other.held
    into.ignored += other.ignored
    into.failed += other.failed
    for code, n in other.error_codes.items():
        into.error_codes[code] = into.error_codes.get(code, 0) + n


def apply_outcomes(
    writes: Sequence[PlannedWrite],
    outcomes: Sequence[WriteOutcome | None],
    is_missing: Callable[[WriteOutcome], bool],
    *,
    owners: Mapping[str, str] | None = None,
) -> Applied:
    """Sort each answered write into links, updates, failures or recreates (module docstring).

    Args:
        writes: the writes, in the order sent.
        outcomes: one per write (``None``: not answered).
        is_missing: whether an outcome says the target record is gone.
        owners: target ids already owned by a source id (of this page's earlier steps), so a
            duplicate across steps is caught too.
    """
    if len(writes) != len(outcomes):
        raise ValueError("one outcome per write is needed (None for one never answered)")
    applied = Applied()
    counts = applied.counts
    owner_of: dict[str, str] = dict(owners or {})

    def fail(write: PlannedWrite, out: WriteOutcome, operation: str | None = None) -> None:
        code = out.code or "unknown"
        counts.failure(code)
        applied.failures.append(
            Failure(
                write.source_id,
                write.target_id,
                operation or write.kind.value,
                code,
                out.message or "refused by the target",
            )
        )

    def remember(write: PlannedWrite) -> None:
        applied.succeeded.append(write.source_id)
        if write.pending_links:
            applied.pending.append(write.source_id)

    for write, out in zip(writes, outcomes, strict=True):
        if out is None:
            continue
        if write.kind is OpKind.CREATE:
            if not (out.accepted and out.target_id):
                fail(write, out)
                continue
            first = owner_of.setdefault(out.target_id, write.source_id)
            if first != write.source_id:
                counts.failure(DUPLICATE_TARGET_CODE)
                applied.failures.append(
                    Failure(
                        write.source_id,
                        out.target_id,
                        write.kind.value,
                        DUPLICATE_TARGET_CODE,
                        f"the target merged this record into {out.target_id}, which source "
                        f"record {first} already owns; change one of them so they differ",
                    )
                )
                continue
            counts.created += out.status.value == "created"
            counts.updated += out.status.value != "created"
            applied.links.append(
                NewLink(
                    write.source_id, out.target_id, write.digest, write.field_hashes, write.version
                )
            )
            remember(write)
        elif write.kind is OpKind.UPDATE:
            moved = out.target_id is not None and out.target_id != write.target_id
            if out.accepted and moved and write.target_id is not None and out.target_id:
                # An upsert found the record gone and made it anew: the link moves with it.
                counts.updated += 1
                applied.links.append(
                    NewLink(
                        write.source_id,
                        out.target_id,
                        write.digest,
                        write.field_hashes,
                        write.version,
                    )
                )
                remember(write)
            elif out.accepted:
                counts.updated += 1
                applied.updates.append(
                    LinkUpdate(
                        write.source_id,
                        digest=write.digest,
                        field_hashes=write.field_hashes,
                        version=write.version,
                        deleted=False,
                        filtered_out=False,
                    )
                )
                remember(write)
            elif is_missing(out) and write.full_payload is not None:
                applied.recreate.append(write)
            else:
                fail(write, out)
        elif write.target_id is None:  # a mark found by key, for a record with no mapping
            if out.accepted:
                counts.deleted += 1
            elif is_missing(out):
                counts.ignored += 1  # it never reached the target: nothing to mark
            else:
                fail(write, out)
                continue
            applied.succeeded.append(write.source_id)
        else:
            if out.accepted or is_missing(out):
                counts.deleted += 1
                applied.updates.append(LinkUpdate(write.source_id, deleted=True))
                applied.succeeded.append(write.source_id)
            else:
                fail(write, out)
    return applied


def recreate_writes(
    lost: Sequence[PlannedWrite], hashes: Callable[[Mapping[str, Any]], Mapping[str, str]]
) -> list[PlannedWrite]:
    """The creates that replace records the target lost: their whole payload (``hashes`` gives
    its per-field memory), no target id."""
    writes = []
    for w in lost:
        payload = w.full_payload or w.payload
        writes.append(
            PlannedWrite(
                OpKind.CREATE,
                w.source_id,
                payload,
                None,
                w.digest,
                hashes(payload),
                w.version,
                w.pending_links,
            )
        )
    return writes
