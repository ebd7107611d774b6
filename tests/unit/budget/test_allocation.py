"""The allocation rules under every interleaving hypothesis finds: K processes, kills,
restarts, storage failures (lost writes and writes applied unseen), clock skew within the
margin. The vendor's view (when calls were counted, how many ran at once) must never exceed
the share, and the daily budget must hold."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.budget.rules import BudgetLimits
from shared.marketo.governor import max_calls_in_any_window
from tests.unit.budget.simulation import Process, World

OUTCOMES = ["ok", "ok", "lost", "unseen"]
"""A write that succeeds, one lost by storage, one applied without the process hearing so."""

steps = st.lists(
    st.one_of(
        st.tuples(st.just("advance"), st.floats(0.0, 4.0)),
        st.tuples(st.just("advance"), st.floats(0.0, 12.0)),
        st.tuples(
            st.just("tx"), st.integers(0, 3), st.sampled_from(["ok", "ok", "lost", "unseen"])
        ),
        st.tuples(st.just("start"), st.integers(0, 3), st.integers(1, 6)),
        st.tuples(st.just("finish"), st.integers(0, 3), st.integers(1, 6)),
        st.tuples(st.just("kill"), st.integers(0, 3)),
        st.tuples(st.just("restart"), st.integers(0, 3)),
        st.tuples(st.just("callers"), st.integers(0, 3), st.integers(0, 6)),
        st.tuples(st.just("work"), st.integers(0, 3), st.integers(1, 12)),
        st.tuples(st.just("crowd"), st.integers(0, 3), st.integers(1, 6)),
    ),
    min_size=30,
    max_size=150,
)


@settings(deadline=None, max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    calls=st.integers(1, 30),
    concurrency=st.integers(1, 6),
    daily=st.one_of(st.none(), st.integers(1, 40), st.integers(1, 40)),
    skews=st.lists(st.floats(-0.5, 0.5), min_size=4, max_size=4),
    processes=st.integers(1, 4),
    script=steps,
)
def test_no_window_concurrency_or_day_is_ever_over_the_share(
    calls: int,
    concurrency: int,
    daily: int | None,
    skews: list[float],
    processes: int,
    script: list[tuple[Any, ...]],
) -> None:
    limits = BudgetLimits(
        calls_per_window=calls,
        window_seconds=20.0,
        max_concurrency=concurrency,
        daily_budget=daily,
        margin_seconds=1.0,
        lease_seconds=10.0,
    )
    world = World(limits, [Process(f"p{i}", skews[i]) for i in range(processes)])
    for step in script:
        kind, *args = step
        if kind == "advance":
            world.advance(args[0])
            continue
        index = args[0] % processes
        if kind == "tx":
            world.transact(index, args[1])
        elif kind == "start":
            for _ in range(args[1]):
                world.start(index)
        elif kind == "finish":
            for _ in range(args[1]):
                world.finish(index)
        elif kind == "kill":
            world.kill(index)
        elif kind == "restart":
            world.restart(index)
        elif kind == "work":  # a busy process: ask, send a burst, get the answers
            world.processes[index].waiting = args[1]
            world.transact(index)
            for _ in range(args[1]):
                world.start(index)
            world.advance(0.05)
            for _ in range(args[1]):
                world.finish(index)
        elif kind == "crowd":  # every process asks and sends, the calls overlap
            for other in range(processes):
                world.transact(other)
                for _ in range(args[1]):
                    world.start(other)
            world.advance(0.5)
        elif kind == "callers":
            world.processes[index].waiting = args[1]
    world.advance(60.0)
    assert max_calls_in_any_window(world.counted_times(), 20.0) <= calls
    assert world.peak_concurrency <= concurrency
    if daily is not None:
        assert world.started <= daily
