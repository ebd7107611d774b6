"""Fault injection for the Web API, per path prefix, deterministic from a seed.

A rule matches requests whose path starts with ``path_prefix`` (and whose method is listed, if
``methods`` is given). Each matching request first takes the next entry of ``sequence`` (exact,
ordered faults: ``["429", "500"]``), and once that is used up draws from the ``rates`` with the
injector's seeded random generator. Kinds: ``429`` (service-protection answer with Retry-After),
``500``, ``503``, ``timeout`` (hold the request until released or ``hang_seconds`` pass, then drop
the connection: a client with a shorter timeout sees a timeout) and ``drop`` (headers sent, then
the connection is closed mid-body). ``latency_ms`` delays every matching request.
"""

from __future__ import annotations

import asyncio
import random
import threading
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

FaultKind = Literal["429", "500", "503", "timeout", "drop"]
KINDS: tuple[FaultKind, ...] = ("429", "500", "503", "timeout", "drop")


class FaultRule(BaseModel):
    """One fault-injection rule (the control API's JSON body)."""

    model_config = ConfigDict(extra="forbid")

    path_prefix: str = "/api/data/v9.2/"
    methods: list[str] | None = None
    rates: dict[FaultKind, float] = Field(default_factory=dict)
    sequence: list[FaultKind] = Field(default_factory=list)
    latency_ms: int = 0
    retry_after_seconds: int = 2
    hang_seconds: float = 120.0
    max_faults: int | None = None
    """Stop injecting after this many faults from this rule (None: no limit)."""


@dataclass
class Decision:
    """What to do to one request."""

    kind: FaultKind | None
    latency_ms: int
    rule: FaultRule | None = None


@dataclass
class _ActiveRule:
    rule: FaultRule
    sequence: list[FaultKind]
    injected: int = 0


@dataclass
class FaultInjector:
    """Holds rules, decides per request, and releases held (timeout) requests."""

    seed: int = 0
    rules: list[_ActiveRule] = field(default_factory=list)
    injected: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()
        self._release: asyncio.Event | None = None

    def add(self, rule: FaultRule) -> None:
        """Add a rule (rules are consulted in the order added)."""
        with self._lock:
            self.rules.append(_ActiveRule(rule, list(rule.sequence)))

    def clear(self, seed: int | None = None) -> None:
        """Remove every rule, release held requests and optionally reseed."""
        with self._lock:
            self.rules.clear()
            self.injected = {}
            if seed is not None:
                self.seed = seed
            self._rng = random.Random(self.seed)
        self.release_held()

    def decide(self, method: str, path: str) -> Decision:
        """The fault (or none) for this request."""
        with self._lock:
            latency = 0
            for active in self.rules:
                rule = active.rule
                if not path.startswith(rule.path_prefix):
                    continue
                if rule.methods and method.upper() not in {m.upper() for m in rule.methods}:
                    continue
                latency = max(latency, rule.latency_ms)
                if rule.max_faults is not None and active.injected >= rule.max_faults:
                    continue
                kind: FaultKind | None = None
                if active.sequence:
                    kind = active.sequence.pop(0)
                else:
                    draw = self._rng.random()
                    total = 0.0
                    for candidate in KINDS:
                        total += rule.rates.get(candidate, 0.0)
                        if draw < total:
                            kind = candidate
                            break
                if kind is not None:
                    active.injected += 1
                    self.injected[kind] = self.injected.get(kind, 0) + 1
                    return Decision(kind, latency, rule)
            return Decision(None, latency)

    def release_event(self) -> asyncio.Event:
        """The event held requests wait on (created on the serving loop)."""
        if self._release is None:
            self._release = asyncio.Event()
        return self._release

    def release_held(self) -> None:
        """Let every held (timeout) request finish now."""
        event = self._release
        self._release = None
        if event is not None:
            event.set()  # control endpoints run on the serving loop, like the held requests

    def describe(self) -> list[dict[str, object]]:
        """Rules with how many faults each has injected."""
        with self._lock:
            return [
                {**a.rule.model_dump(), "injected": a.injected, "sequence_left": list(a.sequence)}
                for a in self.rules
            ]
