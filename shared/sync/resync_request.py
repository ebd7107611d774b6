"""An operator's resync of one entity: recorded in the state store, carried out by the app.

:func:`request_resync` starts the stream over with a full read (new run sequence, phase
``initial``) and leaves the run *closed*: the app's next timer tick starts it, in dependency
order, with the app's own identity; jobs still in flight for the old run turn stale. The old
cursor is kept (``keep_cursor``), so after the read the stream goes on from where it was, and no
change made meanwhile is missed. The rest of the sync goes on untouched.

A stream already in a resync is not restarted (its read would lose its progress); a stream
still in its first copy has nothing to resync yet. The full read is the first copy's own:
records are matched by their ID mapping (no duplicates), and it resumes page by page.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from shared.errors import ConcurrencyConflict, ConfigurationError
from shared.jobs import Direction
from shared.state.store import StateStore
from shared.state.streams import StreamId
from shared.state.watermarks import Phase, Watermark
from shared.sync.blocking import blocking
from shared.sync.config import SyncConfig
from shared.sync.runs import RunTransitions

REQUEST_ATTEMPTS = 3
"""Tries at the conditioned save when the app moved the watermark at the same moment."""
RESYNC_NOTE = "full resync requested by an operator: starts on the next tick"


class ResyncState(StrEnum):
    """What became of one entity's request."""

    REQUESTED = "requested"
    ALREADY_RUNNING = "already running"
    FIRST_COPY = "first copy under way"


@dataclass(frozen=True)
class ResyncRequest:
    """One entity's request and the watermark it left."""

    stream: StreamId
    state: ResyncState
    watermark: Watermark


def order_entities(config: SyncConfig, entities: Sequence[str]) -> list[str]:
    """The entities in the mapping's dependency order.

    Raises:
        ConfigurationError: an entity the mapping does not sync.
    """
    unknown = [e for e in entities if e not in config.entity]
    if unknown:
        raise ConfigurationError(
            f"not in the mapping: {', '.join(unknown)} (synced: {', '.join(config.order)})"
        )
    return [e for e in config.order if e in set(entities)]


async def request_resync(
    store: StateStore,
    config: SyncConfig,
    instance_id: str,
    entities: Sequence[str],
    direction: Direction = Direction.DYNAMICS_TO_MARKETO,
) -> list[ResyncRequest]:
    """Record a resync of each entity (see the module docstring)."""
    runs = RunTransitions(
        store, store.clock, {name: spec.depends_on for name, spec in config.entity.items()}
    )
    requests = []
    for entity in order_entities(config, entities):
        stream = StreamId(instance_id, entity, direction)
        requests.append(await _request_one(runs, store, stream))
    return requests


async def _request_one(runs: RunTransitions, store: StateStore, stream: StreamId) -> ResyncRequest:
    for attempt in range(1, REQUEST_ATTEMPTS + 1):
        mark = await blocking(store.watermarks.get, stream)
        if mark.resync:  # reading, or sweeping after the read
            return ResyncRequest(stream, ResyncState.ALREADY_RUNNING, mark)
        if mark.phase is Phase.INITIAL and mark.sequence > 0:
            return ResyncRequest(stream, ResyncState.FIRST_COPY, mark)
        try:
            restarted = await runs.resync(stream, RESYNC_NOTE, close=True, keep_cursor=True)
        except ConcurrencyConflict:
            if attempt == REQUEST_ATTEMPTS:
                raise
            continue
        return ResyncRequest(stream, ResyncState.REQUESTED, restarted)
    raise AssertionError("unreachable")  # pragma: no cover


def resync_done(requested: Watermark, now: Watermark) -> bool:
    """Whether the resync ``requested`` left has finished: read, swept, back to incremental."""
    return now.sequence > requested.sequence and now.phase is Phase.INCREMENTAL and not now.resync
