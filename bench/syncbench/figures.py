"""The arithmetic of the benchmark: bounds, ideal call counts, percentiles, targets. Pure.

**The bound.** Marketo takes at most 300 records per write call and the governor admits at most
100 calls per 20 s (``MARKETO_CALLS_PER_20S=100``, the instance limit). Two readings of "the
records/s that window allows" over a run of ``d`` seconds:

* *burst*: every started 20 s window allows 100 calls, so ``300 × 100 × ⌈d / 20⌉`` records could
  have been written in ``d`` seconds; the bound is that divided by ``d``. It is never below
  1,500 records/s and is much higher for a run shorter than one window (a 10 s run could write
  30,000 records: 3,000/s). A run with fewer records than one window's 30,000 cannot reach 90 %
  of it whatever its speed, so it is reported but judged against the steady state;
* *steady state*: ``300 × 100 / 20 = 1,500`` records/s, what a long run can sustain.

The target (≥ 90 % of the bound) is judged against the steady-state bound; both ratios are
reported.

**Ideal calls.** Per entity, ``⌈written / 300⌉`` Marketo writes and ``⌈read / 5000⌉`` Dataverse
page reads (its largest page); the ideal of a run is the sum over its entities.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

MARKETO_BATCH = 300
DATAVERSE_PAGE = 5000
GOVERNOR_CALLS = 100
GOVERNOR_WINDOW = 20.0
STEADY_RECORDS_PER_SECOND = MARKETO_BATCH * GOVERNOR_CALLS / GOVERNOR_WINDOW


def burst_calls_allowed(duration: float) -> int:
    """Calls the governor allows in ``duration`` seconds: 100 per started 20 s window."""
    if duration <= 0:
        raise ValueError("duration must be positive")
    return GOVERNOR_CALLS * math.ceil(duration / GOVERNOR_WINDOW)


def burst_bound(duration: float) -> float:
    """Records/s if every allowed call carried 300 records (see the module docstring)."""
    return MARKETO_BATCH * burst_calls_allowed(duration) / duration


def ideal_writes(written: Mapping[str, int]) -> int:
    """``Σ ⌈n / 300⌉`` over entities."""
    return sum(math.ceil(n / MARKETO_BATCH) for n in written.values())


def ideal_reads(read: Mapping[str, int]) -> int:
    """``Σ ⌈n / 5000⌉`` over entities (an empty table still costs the one read that says so)."""
    return sum(max(1, math.ceil(n / DATAVERSE_PAGE)) for n in read.values())


def per_thousand(calls: int, records: int) -> float:
    """Calls per 1,000 records."""
    return 1000.0 * calls / records if records else math.inf


def percentile(values: Sequence[float], share: float) -> float:
    """The nearest-rank percentile: the smallest value with at least ``share`` of all values
    at or below it (p95 of 200 values is the 190th smallest)."""
    if not values:
        raise ValueError("no values")
    if not 0 < share <= 1:
        raise ValueError("share must be within (0, 1]")
    ordered = sorted(values)
    rank = math.ceil(share * len(ordered))
    return ordered[rank - 1]


@dataclass(frozen=True)
class Target:
    """One figure against its target."""

    name: str
    value: float
    limit: float
    unit: str
    higher_is_better: bool

    @property
    def passed(self) -> bool:
        """Whether the figure meets the target."""
        return self.value >= self.limit if self.higher_is_better else self.value <= self.limit

    def as_json(self) -> dict[str, object]:
        """For ``latest.json``."""
        return {
            "value": round(self.value, 4),
            "target": ("≥ " if self.higher_is_better else "≤ ") + f"{self.limit:g} {self.unit}",
            "pass": self.passed,
        }


def all_passed(targets: Iterable[Target]) -> bool:
    """Whether every target holds."""
    return all(t.passed for t in targets)
