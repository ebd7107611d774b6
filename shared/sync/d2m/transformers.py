"""Row transformers per entity, rebuilt when the small lookup tables they embed may be stale."""

from __future__ import annotations

from shared.clock import Clock
from shared.sync.config import SyncConfig
from shared.sync.d2m.reader import REFERENCE_TABLE_TTL, DataverseChangeReader
from shared.sync.transform import RowTransformer


class TransformerCache:
    """One :class:`RowTransformer` per entity; an entity with lookup tables (connection role
    names) gets a new one after :data:`~shared.sync.d2m.reader.REFERENCE_TABLE_TTL` seconds, so
    a role added or renamed in Dynamics is seen within minutes rather than at the next restart."""

    def __init__(self, config: SyncConfig, reader: DataverseChangeReader, clock: Clock) -> None:
        self.config = config
        self.reader = reader
        self.clock = clock
        self._built: dict[str, tuple[float, RowTransformer]] = {}

    async def get(self, entity: str) -> RowTransformer:
        """The entity's transformer (built, or rebuilt, on demand)."""
        spec = self.config.entity[entity]
        now = self.clock.monotonic()
        cached = self._built.get(entity)
        if cached is not None and (not spec.lookups or now - cached[0] < REFERENCE_TABLE_TTL):
            return cached[1]
        tables = {
            lookup.entity_set: await self.reader.reference_table(
                lookup.table, lookup.entity_set, lookup.key, lookup.field
            )
            for lookup in spec.lookups.values()
        }
        transformer = RowTransformer(self.config, entity, tables)
        self._built[entity] = (now, transformer)
        return transformer
