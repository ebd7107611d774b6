"""Resolve a page's link targets (owners, companies, ...) before transforming its rows.

For every link of the entity, the ids its rows point at are looked up in the ID mappings of the
link's candidate entities, in bulk. A target found there is *synced* (its Dynamics or Marketo id
can be written). A target found nowhere is asked about once from Dynamics: if it is a record of
one of the candidate tables that the sync filter lets through, it is *pending* (its own stream
will bring it; the row goes without the link, or waits if the link is required); otherwise it is
*absent* (a parent that is a contact, say, or an account kept out by ``new_synctomkto``), and the
Marketo link field is cleared.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

from shared.sync.config import LinkSpec, SyncConfig
from shared.sync.transform import LinkResolver, LinkState

MappingLookup = Callable[[str, Sequence[str]], Awaitable[Mapping[str, tuple[str, bool]]]]
"""``(entity, ids) -> {id: (marketo_id, usable)}`` from the ID mapping (``usable`` is False for a
record marked deleted in Dynamics)."""

ExistenceProbe = Callable[[str, Sequence[str]], Awaitable[Mapping[str, bool]]]
"""``(entity, ids) -> {id: sync filter allows}`` for the ids that exist in Dynamics."""


class LinkIndex:
    """What is known about each (entity, id) link target of one page."""

    def __init__(self) -> None:
        self.synced: dict[tuple[str, str], str] = {}
        self.pending: set[tuple[str, str]] = set()

    def resolver(self) -> LinkResolver:
        """A resolver for :class:`~shared.sync.transform.RowTransformer.prepare`."""

        def resolve(link: LinkSpec, target: str) -> tuple[LinkState, str | None]:
            key = target.lower()
            for entity in link.entities:
                marketo_id = self.synced.get((entity, key))
                if marketo_id is not None:
                    return LinkState.SYNCED, marketo_id if link.value == "marketo_id" else target
            if any((entity, key) in self.pending for entity in link.entities):
                return LinkState.PENDING, None
            return LinkState.ABSENT, None

        return resolve


def link_targets(
    config: SyncConfig, entity: str, rows: Iterable[Mapping[str, Any]]
) -> dict[str, set[str]]:
    """Per candidate entity, the (lower-cased) ids this page's rows link to."""
    wanted: dict[str, set[str]] = defaultdict(set)
    for link in config.entity[entity].links.values():
        for row in rows:
            for column in link.columns:
                value = row.get(column)
                if value:
                    for target_entity in link.entities:
                        wanted[target_entity].add(str(value).lower())
    return wanted


async def build_link_index(
    config: SyncConfig,
    entity: str,
    rows: Sequence[Mapping[str, Any]],
    lookup: MappingLookup,
    probe: ExistenceProbe,
) -> LinkIndex:
    """Look up every link target of ``rows``: mappings first, Dynamics for the rest."""
    index = LinkIndex()
    wanted = link_targets(config, entity, rows)
    unresolved: set[str] = set()
    for target_entity, ids in wanted.items():
        found = await lookup(target_entity, sorted(ids))
        for dynamics_id, (marketo_id, usable) in found.items():
            if usable:
                index.synced[(target_entity, dynamics_id.lower())] = marketo_id
        unresolved |= ids
    unresolved = {
        i for i in unresolved if not any((e, i) in index.synced for e in wanted if i in wanted[e])
    }
    if not unresolved:
        return index
    for target_entity, ids in wanted.items():
        candidates = sorted(ids & unresolved)
        if not candidates:
            continue
        states = await probe(target_entity, candidates)
        for dynamics_id, allowed in states.items():
            if allowed:
                index.pending.add((target_entity, dynamics_id.lower()))
    return index
