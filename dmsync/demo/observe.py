"""What the demo reads to show progress and arrivals, without costing the sync anything.

Marketo is read through the emulator's control API (``/_emulator/``: never counted against the
rate limit or the daily quota, emulator README "Control API"), so watching does not take calls
from the sync's share. Sync state (watermarks, ID mappings) is read from the state store, as
``dmsync status`` does.
"""

from __future__ import annotations

from typing import Any

import httpx

from emulators.marketo.runner import RunningMarketo
from shared.state.mappings import IdMapping
from shared.state.store import StateStore
from shared.state.watermarks import Watermark
from shared.sync.config import EntitySpec, SyncConfig, TargetKind

LEADS = "leads"


def marketo_path(spec: EntitySpec) -> str:
    """The control API collection an entity's records land in."""
    if spec.target is TargetKind.LEAD:
        return LEADS
    if spec.target is TargetKind.CUSTOM_OBJECT:
        return f"customobjects/{spec.object_name}"
    return {
        TargetKind.COMPANY: "companies",
        TargetKind.OPPORTUNITY: "opportunities",
        TargetKind.OPPORTUNITY_ROLE: "opportunities/roles",
        TargetKind.SALES_PERSON: "salespersons",
    }[spec.target]


class MarketoView:
    """Records and counts as the Marketo emulator stores them."""

    def __init__(self, marketo: RunningMarketo, config: SyncConfig) -> None:
        self._http = httpx.Client(base_url=f"{marketo.base_url}/_emulator", timeout=60)
        self.paths = tuple(dict.fromkeys(marketo_path(config.entity[e]) for e in config.order))
        self._cache: dict[str, list[dict[str, Any]]] = {}

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._http.close()

    def _get(self, path: str, **params: int) -> Any:
        response = self._http.get(path, params=params or None)
        response.raise_for_status()
        return response.json()

    def totals(self) -> dict[str, int]:
        """How many records each collection holds (one small request each)."""
        counts: dict[str, int] = {}
        for path in self.paths:
            url = "/leads" if path == LEADS else f"/objects/{path}"
            counts[path] = int(self._get(url, limit=1)["total"])
        return counts

    def lead(self, marketo_id: str) -> dict[str, Any] | None:
        """One person by Marketo id, or ``None``."""
        response = self._http.get(f"/leads/{int(marketo_id)}")
        if response.status_code == 404:
            return None
        response.raise_for_status()
        lead: dict[str, Any] = response.json()
        return lead

    def find(self, path: str, key_field: str, key: str) -> dict[str, Any] | None:
        """The record of a collection whose ``key_field`` is ``key`` (cached until
        :meth:`refresh`)."""
        if path not in self._cache:
            self._cache[path] = list(self._get(f"/objects/{path}")["records"])
        for record in self._cache[path]:
            if str(record.get(key_field) or "").lower() == key.lower():
                return record
        return None

    def refresh(self) -> None:
        """Forget cached collections (call once per polling round)."""
        self._cache.clear()


class SyncStateView:
    """The instance's watermarks and ID mappings."""

    def __init__(self, store: StateStore, instance_id: str) -> None:
        self.store = store
        self.instance_id = instance_id

    def watermarks(self) -> dict[str, Watermark]:
        """Entity → its Dynamics → Marketo watermark (streams that have run)."""
        return {w.stream.entity: w for w in self.store.watermarks.list(self.instance_id)}

    def open_errors(self) -> dict[str, int]:
        """Entity → open sync errors."""
        return {
            stream.entity: count
            for stream, count in self.store.errors.count_open(self.instance_id).items()
        }

    def mapping(self, entity: str, dynamics_id: str) -> IdMapping | None:
        """The ID mapping of one record, if it has reached Marketo."""
        return self.store.mappings.get(self.instance_id, entity, dynamics_id)

    def mapped(self, entity: str, dynamics_ids: list[str]) -> dict[str, IdMapping]:
        """ID mappings of several records (lower-case id → mapping)."""
        found = self.store.mappings.get_many(self.instance_id, entity, dynamics_ids)
        return {key.lower(): value for key, value in found.items()}
