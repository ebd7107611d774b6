"""Fault injection and the hold gate, both driven by the control API.

Faults are drawn from a seeded generator (one draw per matching call), or taken in order from a
``next`` queue, so a test gets the same faults on every run:

===============  ====================================================================
kind             what the client sees
===============  ====================================================================
``606``          ``success:false`` 606 (as if the instance's rate limit were hit)
``615``          ``success:false`` 615 (concurrency limit)
``611``          ``success:false`` 611 System error
``608``          ``success:false`` 608 API Temporarily Unavailable
``502``          HTTP 502 with a ``success:false`` 502 body (reference B.3: "retry with backoff")
``timeout``      nothing for ``hang_seconds``, then ``success:false`` 604 Request time-out
``drop``         the connection closes before the call is processed
``drop_after``   the call is processed (writes happen), then the connection closes mid-response
===============  ====================================================================

The gate holds calls at a stage (``admitted``: after the limits let them in; ``upsert``: inside
Sync Leads between finding matches and writing) until released, so tests can create overlap
(concurrency, racing upserts) without relying on timing.
"""

from __future__ import annotations

import asyncio
import random
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

FaultKind = Literal["606", "615", "611", "608", "502", "timeout", "drop", "drop_after"]
FAULT_ORDER: tuple[FaultKind, ...] = (
    "606",
    "615",
    "611",
    "608",
    "502",
    "timeout",
    "drop",
    "drop_after",
)
GateStage = Literal["admitted", "upsert"]


class FaultSettings(BaseModel):
    """What ``PUT /_emulator/faults`` accepts."""

    model_config = ConfigDict(extra="forbid")

    seed: int = 0
    rates: dict[FaultKind, float] = Field(default_factory=dict)
    latency_ms: tuple[float, float] = (0.0, 0.0)
    """Extra time (uniform between the two bounds) every matching admitted call takes."""
    hang_seconds: float = Field(default=35.0, ge=0)
    paths: list[str] = Field(default_factory=list)
    """Only calls whose path starts with one of these are affected (empty: every API call)."""
    next: list[FaultKind] = Field(default_factory=list)
    """Faults for the next matching calls, in order, before any random draw."""


class FaultInjector:
    """Decides, per call, whether and how it fails."""

    def __init__(self) -> None:
        self.settings = FaultSettings()
        self._random = random.Random(0)
        self._queue: list[FaultKind] = []

    def configure(self, settings: FaultSettings) -> None:
        """Replace the settings and reseed."""
        total = sum(settings.rates.values())
        if any(rate < 0 for rate in settings.rates.values()) or total > 1.0:
            raise ValueError("fault rates must be >= 0 and add up to at most 1")
        low, high = settings.latency_ms
        if low < 0 or high < low:
            raise ValueError("latency_ms must be [min, max] with 0 <= min <= max")
        self.settings = settings
        self._random = random.Random(settings.seed)
        self._queue = list(settings.next)

    def clear(self) -> None:
        """No faults, no latency."""
        self.configure(FaultSettings())

    def _matches(self, path: str) -> bool:
        prefixes = self.settings.paths
        return not prefixes or any(path.startswith(prefix) for prefix in prefixes)

    def pick(self, path: str) -> FaultKind | None:
        """The fault for this call, if any."""
        if not self._matches(path):
            return None
        if self._queue:
            return self._queue.pop(0)
        rates = self.settings.rates
        if not rates:
            return None
        draw = self._random.random()
        threshold = 0.0
        for kind in FAULT_ORDER:
            threshold += rates.get(kind, 0.0)
            if draw < threshold:
                return kind
        return None

    def latency(self, path: str) -> float:
        """Seconds of extra latency for this call."""
        low, high = self.settings.latency_ms
        if high <= 0 or not self._matches(path):
            return 0.0
        return self._random.uniform(low, high) / 1000.0

    @property
    def pending(self) -> int:
        """Queued one-shot faults not yet used."""
        return len(self._queue)


class Gate:
    """Holds calls at one stage until released."""

    def __init__(self) -> None:
        self.stage: GateStage | None = None
        self.paths: list[str] = []
        self.waiting = 0
        self._open: asyncio.Event | None = None

    def close(self, stage: GateStage, paths: list[str]) -> None:
        """Start holding calls that reach ``stage`` (and match ``paths``, if given)."""
        self.stage = stage
        self.paths = paths
        self._event().clear()

    def release(self) -> None:
        """Let every held call (and later ones) through."""
        self.stage = None
        self._event().set()

    def _event(self) -> asyncio.Event:
        if self._open is None:
            self._open = asyncio.Event()
            self._open.set()
        return self._open

    async def passage(self, stage: GateStage, path: str) -> None:
        """Wait here while the gate is closed for ``stage`` and ``path``."""
        if self.stage != stage:
            return
        if self.paths and not any(path.startswith(prefix) for prefix in self.paths):
            return
        self.waiting += 1
        try:
            await self._event().wait()
        finally:
            self.waiting -= 1
