"""Wrappers of the real Marketo writer for fault tests: pass everything through but ``write``."""

from __future__ import annotations

from collections.abc import MutableMapping, Sequence
from typing import Any

from shared.sync.config import EntitySpec
from shared.sync.pipeline import RecordWriter, WriteMode, WriteOp, WriteOutcome


class PassThroughWriter:
    """A :class:`RecordWriter` that hands every call to ``inner``; subclasses change ``write``."""

    def __init__(self, inner: RecordWriter) -> None:
        self.inner = inner

    async def quota_stop_until(self) -> Any:
        return await self.inner.quota_stop_until()

    def is_missing(self, outcome: WriteOutcome) -> bool:
        return self.inner.is_missing(outcome)

    async def current(
        self, spec: EntitySpec, target_ids: Sequence[str], fields: Sequence[str]
    ) -> dict[str, dict[str, Any]]:
        return await self.inner.current(spec, target_ids, fields)

    async def write(
        self,
        spec: EntitySpec,
        mode: WriteMode,
        ops: Sequence[WriteOp],
        done: MutableMapping[int, WriteOutcome] | None = None,
    ) -> list[WriteOutcome]:
        return await self.inner.write(spec, mode, ops, done)
