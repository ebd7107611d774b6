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


class JobLinkMemory:
    """What one job learned about link targets, reused by its later pages.

    A job goes on for up to ``job_seconds`` of pages, and the pages of one stream point at
    much the same targets (a page of 5,000 contacts links to about 1,700 accounts and a few
    dozen owners), so the mapping and Dataverse are asked once per job instead of once per
    page. An answer is at most a job old: the same kind of staleness a page already has between
    its lookup and its write, and just as harmless (a target that reached Marketo meanwhile is
    treated as pending, and its link is sent again later). Targets of the stream's own entity
    are never remembered: its own pages create them.
    """

    def __init__(self, own_entity: str, lookup: MappingLookup, probe: ExistenceProbe) -> None:
        self._own_entity = own_entity
        self._lookup = lookup
        self._probe = probe
        self._mapped: dict[tuple[str, str], tuple[str, bool] | None] = {}
        self._probed: dict[tuple[str, str], bool | None] = {}

    async def lookup(self, entity: str, ids: Sequence[str]) -> Mapping[str, tuple[str, bool]]:
        """As :data:`MappingLookup`, asking only about ids not asked about before."""
        if entity == self._own_entity:
            return await self._lookup(entity, ids)
        fresh = [i for i in ids if (entity, i.lower()) not in self._mapped]
        if fresh:
            found = {k.lower(): v for k, v in (await self._lookup(entity, fresh)).items()}
            for target in fresh:
                self._mapped[(entity, target.lower())] = found.get(target.lower())
        known = ((i.lower(), self._mapped[(entity, i.lower())]) for i in ids)
        return {target: state for target, state in known if state is not None}

    async def probe(self, entity: str, ids: Sequence[str]) -> Mapping[str, bool]:
        """As :data:`ExistenceProbe`, asking only about ids not asked about before."""
        if entity == self._own_entity:
            return await self._probe(entity, ids)
        fresh = [i for i in ids if (entity, i.lower()) not in self._probed]
        if fresh:
            found = {k.lower(): v for k, v in (await self._probe(entity, fresh)).items()}
            for target in fresh:
                self._probed[(entity, target.lower())] = found.get(target.lower())
        known = ((i.lower(), self._probed[(entity, i.lower())]) for i in ids)
        return {target: allowed for target, allowed in known if allowed is not None}
