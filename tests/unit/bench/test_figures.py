"""The benchmark's arithmetic and its readings of /proc (pure; no process is started)."""

from __future__ import annotations

import math

import pytest

from bench.syncbench import figures, report
from bench.syncbench.procstat import machine_busy_seconds, parse_cpu_seconds, parse_memory_kb
from bench.syncbench.stack import MAPPING_FILE, SYNCED_TABLES, eligible_rows
from shared.sync.config import load_config


def test_the_burst_bound_counts_every_started_window() -> None:
    """100 calls per started 20 s window, 300 records a call."""
    assert figures.burst_calls_allowed(0.5) == 100
    assert figures.burst_calls_allowed(20.0) == 100
    assert figures.burst_calls_allowed(20.1) == 200
    assert figures.burst_bound(10.0) == pytest.approx(3000.0)
    assert figures.burst_bound(40.0) == pytest.approx(1500.0)
    assert figures.STEADY_RECORDS_PER_SECOND == 1500.0
    with pytest.raises(ValueError, match="positive"):
        figures.burst_calls_allowed(0)


def test_ideal_calls_are_per_entity() -> None:
    """⌈n/300⌉ writes and ⌈n/5000⌉ reads per entity, summed; an empty table still reads once."""
    assert figures.ideal_writes({"contact": 17991, "account": 1806, "systemuser": 21}) == (
        60 + 7 + 1
    )
    assert figures.ideal_reads({"contact": 20000, "account": 2000, "team": 0}) == 4 + 1 + 1
    assert figures.per_thousand(73, 19823) == pytest.approx(3.6826, abs=1e-4)
    assert math.isinf(figures.per_thousand(1, 0))


def test_percentiles_are_nearest_rank() -> None:
    """p95 of 200 values is the 190th smallest; p50 the 100th."""
    values = [float(v) for v in range(200, 0, -1)]
    assert figures.percentile(values, 0.95) == 190.0
    assert figures.percentile(values, 0.50) == 100.0
    assert figures.percentile([7.0], 0.95) == 7.0
    with pytest.raises(ValueError, match="no values"):
        figures.percentile([], 0.5)


def test_targets_pass_on_their_side_of_the_limit() -> None:
    """Higher-is-better and lower-is-better, the limit itself included."""
    assert figures.Target("rate", 0.9, 0.9, "", True).passed
    assert not figures.Target("rate", 0.89, 0.9, "", True).passed
    assert figures.Target("cpu", 150.0, 150.0, "µs", False).passed
    assert not figures.Target("cpu", 151.0, 150.0, "µs", False).as_json()["pass"]


def test_proc_readings() -> None:
    """utime+stime after a command name with spaces and parentheses; VmRSS and VmHWM in kB;
    the machine's busy time leaves out idle and iowait."""
    stat = "4242 (python (host) x) S 1 4242 4242 0 -1 4194560 10 0 0 0 250 50 7 9 20 0 12"
    assert parse_cpu_seconds(stat, ticks_per_second=100) == pytest.approx(3.0)
    status = "Name:\tpython\nVmHWM:\t  131072 kB\nVmRSS:\t   65536 kB\nThreads:\t12\n"
    assert parse_memory_kb(status) == (65536, 131072)
    machine = "cpu  100 5 50 1000 20 3 2 0 0 0\ncpu0 50 2 25 500 10 1 1 0 0 0\n"
    assert machine_busy_seconds(machine, ticks_per_second=100) == pytest.approx(1.6)


def test_counter_snapshots_subtract_field_by_field() -> None:
    """Numbers and nested counters; unchanged nested counters are left out."""
    before = {"requests": 10, "by_endpoint": {"a": 2, "b": 1}, "note": "x"}
    after = {"requests": 15, "by_endpoint": {"a": 2, "b": 4, "c": 1}, "note": "y"}
    assert report.subtract(after, before) == {
        "requests": 5,
        "by_endpoint": {"b": 3, "c": 1},
        "note": "y",
    }


def test_eligible_rows_follow_the_sync_filter() -> None:
    """Only an explicit No keeps an account or contact out; users and teams all count."""
    rows = [{"new_synctomkto": False}, {"new_synctomkto": None}, {"new_synctomkto": True}, {}]
    assert eligible_rows("contact", rows) == 3
    assert eligible_rows("systemuser", rows) == 4


def test_the_bench_mapping_is_the_default_for_its_entities() -> None:
    """systemuser, team, account and contact exactly as shipped, and nothing else."""
    bench = load_config(MAPPING_FILE)
    default = load_config()
    assert tuple(bench.entity) == SYNCED_TABLES
    for name in SYNCED_TABLES:
        assert bench.entity[name] == default.entity[name]
    assert bench.person == default.person
    assert bench.objects == default.objects
