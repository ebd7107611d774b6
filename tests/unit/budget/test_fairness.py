"""With a backlog, K processes together use at least 90 % of the share and none starves
(virtual time, the same model as test_allocation)."""

from __future__ import annotations

import pytest

from shared.budget.rules import BudgetLimits
from shared.marketo.governor import max_calls_in_any_window
from tests.unit.budget.simulation import Process, World

CALL_SECONDS = 0.05
TICK = 0.05


def run_backlog(processes: int, seconds: float, limits: BudgetLimits) -> World:
    """Every process always has callers waiting; a process without a usable grant asks again
    every quarter second; a call takes 50 ms."""
    world = World(limits, [Process(f"p{i}", 0.0, waiting=5) for i in range(processes)])
    next_ask = [0.0] * processes
    started_at: list[list[float]] = [[] for _ in range(processes)]
    end = world.now + seconds
    while world.now < end:
        for i, p in enumerate(world.processes):
            while started_at[i] and started_at[i][0] + CALL_SECONDS <= world.now:
                started_at[i].pop(0)
                world.finish(i)
            if not world.start(i) and world.now >= next_ask[i]:
                world.transact(i)
                next_ask[i] = world.now + 0.25
            while world.start(i):
                pass
            started_at[i] = [c.sent for c in p.in_flight()]
        world.advance(TICK)
    return world


@pytest.mark.parametrize("processes", [1, 2, 3, 4])
def test_k_busy_processes_use_the_share_and_share_it(processes: int) -> None:
    limits = BudgetLimits(calls_per_window=50, window_seconds=20.0, max_concurrency=5)
    world = run_backlog(processes, 400.0, limits)
    windows = 400.0 / 20.0
    assert max_calls_in_any_window(world.counted_times(), 20.0) <= 50
    assert world.started >= 0.9 * 50 * windows
    per_process = [len(p.calls) for p in world.processes]
    assert min(per_process) >= 0.5 * world.started / processes, per_process
