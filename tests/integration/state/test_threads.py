"""The store used from async code through ``asyncio.to_thread``: one client per thread."""

from __future__ import annotations

import asyncio

import pytest

from shared.jobs import Direction
from shared.state.mappings import IdMapping
from shared.state.store import StateStore
from shared.state.streams import StreamId
from shared.state.watermarks import RunCounts
from tests.integration.state.conftest import RequestLog

pytestmark = pytest.mark.integration


async def test_concurrent_calls_from_worker_threads(
    store: StateStore, request_log: RequestLog
) -> None:
    """Twelve concurrent calls in the default thread pool all succeed, and every thread that
    touched the store built exactly one client of its own."""
    mappings = [IdMapping("i1", "contact", f"d-{i}", "lead", str(i)) for i in range(60)]
    store.mappings.put_many(mappings)
    streams = [StreamId("i1", f"entity{i}", Direction.DYNAMICS_TO_MARKETO) for i in range(6)]

    async def advance(stream: StreamId) -> int:
        mark = await asyncio.to_thread(store.watermarks.start_run, stream)
        saved = await asyncio.to_thread(
            lambda: store.watermarks.advance(
                stream, sequence=mark.sequence, cursor="c", counts=RunCounts(read=3)
            )
        )
        return saved.counts.read

    async def lookup(chunk: int) -> int:
        ids = [f"d-{i}" for i in range(chunk * 10, chunk * 10 + 10)]
        found = await asyncio.to_thread(store.mappings.get_many, "i1", "contact", ids)
        return len(found)

    results = await asyncio.gather(*(advance(s) for s in streams), *(lookup(c) for c in range(6)))
    assert results == [3] * 6 + [10] * 6
    assert len(request_log.threads) >= 2
    assert request_log.clients_made == len(request_log.threads)
