"""Plan the Marketo writes for one page of Dynamics changes: pure, no I/O.

Given the transformed rows, the deleted ids and what the ID mapping knows about each record, the
planner sorts every record into exactly one bucket:

* ``create``: not in Marketo as far as the mapping knows → upsert by the Dynamics key
  (``externalPersonId`` etc.), which also makes a replay after a crash harmless: the record is
  found by its key, not created twice;
* ``update``: in the mapping → for persons, update that very Marketo id (the mapping is
  authoritative: a Dynamics lead and contact sharing an email stay two people); other objects are
  keyed by their Dynamics id anyway;
* ``unchanged``: same payload digest as last written and not marked deleted → no call at all (a
  change this sync itself caused, or a no-op update, is not written again);
* ``mark_deleted``: a Dynamics delete of a synced record → the "deleted in Dynamics" mark;
* ``mark_by_key``: a Dynamics delete of a record with no mapping, for an entity written with a
  key field → the mark, found by that key. The record may have reached Marketo without its
  mapping being stored (a crash between the two); an update-only write by key marks it if it
  is there and creates nothing if it is not;
* ``filtered``: ``new_synctomkto`` is now No → remember it, leave the Marketo record (A.4);
* ``held``: a required link target is not in Marketo yet → retried on a later run;
* ``ignored``: out of scope, or a delete of a record never synced.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from shared.sync.transform import Decision, Prepared


@dataclass(frozen=True, slots=True)
class MappingView:
    """What the ID mapping knows about one Dynamics record (the parts planning needs)."""

    marketo_id: str | None
    digest: str | None = None
    deleted: bool = False
    filtered_out: bool = False


@dataclass(slots=True)
class Plan:
    """The buckets of one page; every input id lands in exactly one."""

    create: list[Prepared] = field(default_factory=list)
    update: list[tuple[Prepared, str]] = field(default_factory=list)
    unchanged: list[Prepared] = field(default_factory=list)
    mark_deleted: list[tuple[str, str]] = field(default_factory=list)
    mark_by_key: list[str] = field(default_factory=list)
    filtered: list[str] = field(default_factory=list)
    held: list[Prepared] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)


def plan_page(
    prepared: Iterable[Prepared],
    deleted_ids: Sequence[str],
    mappings: Mapping[str, MappingView],
    *,
    keyed: bool = False,
) -> Plan:
    """Sort a page's records into the plan's buckets.

    Args:
        prepared: the transformed rows (a row appears once; later duplicates are dropped).
        deleted_ids: ids Dynamics reports deleted in this page.
        mappings: the mapping of every id above that has one.
        keyed: the entity's Marketo records carry the Dynamics id in a key field, so a delete
            without a mapping can still be marked (``mark_by_key``).
    """
    plan = Plan()
    seen: set[str] = set()
    # Deletes first: a delete is the latest state of its record (deletes follow updates in a
    # change-tracking response), so a stale row for the same id must not resurrect it.
    for dynamics_id in deleted_ids:
        if dynamics_id in seen:
            continue
        seen.add(dynamics_id)
        known = mappings.get(dynamics_id)
        if known is not None and known.marketo_id is not None and not known.deleted:
            plan.mark_deleted.append((dynamics_id, known.marketo_id))
        elif known is None and keyed:
            plan.mark_by_key.append(dynamics_id)
        else:
            plan.ignored.append(dynamics_id)
    for item in prepared:
        if item.dynamics_id in seen:
            continue
        seen.add(item.dynamics_id)
        known = mappings.get(item.dynamics_id)
        if item.decision is Decision.SYNC:
            if known is None or known.marketo_id is None:
                plan.create.append(item)
            elif (
                known.digest == item.digest
                and not known.deleted
                and not known.filtered_out  # No→Yes: Marketo updates it again (A.4)
            ):
                plan.unchanged.append(item)
            else:
                plan.update.append((item, known.marketo_id))
        elif item.decision is Decision.FILTERED_OUT:
            if known is not None and not known.filtered_out:
                plan.filtered.append(item.dynamics_id)
            else:
                plan.ignored.append(item.dynamics_id)
        elif item.decision is Decision.HELD:
            plan.held.append(item)
        else:
            plan.ignored.append(item.dynamics_id)
    return plan
