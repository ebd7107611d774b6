"""A virtual-time model of K processes sharing one budget through the pure rules.

Each simulated process keeps the promises :class:`shared.budget.holder.BudgetHolder` keeps
(start a call only from a grant while the lease runs; cancel what still runs shortly before the
lease ends; report finished calls) and builds its report with the same :func:`ask`. The row is
a single value replaced atomically; a storage failure either loses the write or applies it
without the process hearing so. The API side records when each call was sent, counted and
ended (a call is counted at its end: the latest the rules must allow for), so tests can check
the limits as the vendor would.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.budget.holder import CANCEL_GUARD_SECONDS, START_GUARD_SECONDS
from shared.budget.rules import BudgetLimits, HolderState, Ledger, ask, settle

TODAY = "2026-12-02"


@dataclass
class Call:
    sent: float
    ended: float | None = None


@dataclass
class Process:
    name: str
    skew: float
    unused: int = 0
    permits: int = 0
    expires: float = 0.0
    waiting: int = 1
    alive: bool = True
    calls: list[Call] = field(default_factory=list)
    finished: list[float] = field(default_factory=list)

    def in_flight(self) -> list[Call]:
        return [c for c in self.calls if c.ended is None]


@dataclass
class World:
    limits: BudgetLimits
    processes: list[Process]
    now: float = 1_000_000.0
    ledger: Ledger = field(default_factory=Ledger)
    ended: list[Call] = field(default_factory=list)
    started: int = 0
    peak_concurrency: int = 0
    transactions: int = 0

    def own(self, p: Process) -> float:
        """The process's clock."""
        return self.now + p.skew

    # -- time passes, processes keep their promises

    def advance(self, seconds: float) -> None:
        target = self.now + seconds
        while True:
            deadlines = [
                p.expires - CANCEL_GUARD_SECONDS - p.skew
                for p in self.processes
                if p.alive and p.in_flight()
            ]
            due = [d for d in deadlines if self.now <= d <= target]
            if not due:
                break
            self.now = max(self.now, min(due) + 1e-9)
            self._enforce()
        self.now = target
        self._enforce()

    def _enforce(self) -> None:
        for p in self.processes:
            if not p.alive:
                continue
            own = self.own(p)
            if own >= p.expires - CANCEL_GUARD_SECONDS:
                for call in p.in_flight():
                    self._end(p, call)
            if own >= p.expires - START_GUARD_SECONDS:
                p.unused = 0
            if own >= p.expires:
                p.permits = 0

    def _end(self, p: Process, call: Call) -> None:
        call.ended = self.now
        self.ended.append(call)
        p.finished.append(self.own(p))

    # -- the processes' actions

    def transact(self, index: int, outcome: str = "ok") -> None:
        p = self.processes[index]
        if not p.alive:
            return
        self.transactions += 1
        own = self.own(p)
        state = HolderState(
            in_flight=len(p.in_flight()),
            unused=p.unused,
            permits=p.permits,
            waiting=p.waiting,
            finished=tuple(p.finished),
        )
        report, request = ask(state, self.limits)
        new, grant = settle(
            self.ledger, p.name, report, request, now=own, today=TODAY, limits=self.limits
        )
        if outcome == "lost":
            return
        self.ledger = new
        if outcome == "unseen":
            return
        entry = new.holders.get(p.name)
        p.unused = (p.unused if report.unused == 0 else 0) + grant.calls
        p.permits = entry.concurrency if entry else 0
        p.expires = grant.expires
        horizon = own - self.limits.window_seconds - self.limits.margin_seconds
        p.finished = [t for t in p.finished if t > horizon]

    def start(self, index: int) -> bool:
        p = self.processes[index]
        own = self.own(p)
        if not (
            p.alive
            and p.waiting
            and p.unused > 0
            and len(p.in_flight()) < p.permits
            and own < p.expires - START_GUARD_SECONDS
        ):
            return False
        p.unused -= 1
        p.calls.append(Call(self.now))
        self.started += 1
        in_flight = sum(len(q.in_flight()) for q in self.processes)
        self.peak_concurrency = max(self.peak_concurrency, in_flight)
        return True

    def finish(self, index: int) -> None:
        p = self.processes[index]
        running = p.in_flight()
        if p.alive and running:
            self._end(p, running[0])

    def kill(self, index: int) -> None:
        """SIGKILL: the connections drop (calls end now), the process forgets everything."""
        p = self.processes[index]
        if not p.alive:
            return
        for call in p.in_flight():
            self._end(p, call)
        p.alive = False

    def restart(self, index: int) -> None:
        old = self.processes[index]
        if old.alive:
            return
        self.processes[index] = Process(name=old.name + "'", skew=old.skew, waiting=old.waiting)

    # -- what the vendor saw

    def counted_times(self) -> list[float]:
        return sorted(c.ended for c in self.ended if c.ended is not None)
