"""One fault per job, at a chosen call to an outside system; and what a killed worker is.

Every call a job makes to the state store, Dataverse, Marketo or the queue goes through
:func:`checkpoint`. The job runs in its own :mod:`contextvars` context holding a
:class:`JobCalls` (``asyncio.to_thread`` and the state store's transaction threads copy the
context, so the calls of one job are counted together wherever they run). The fault fires at
the ``at``-th call, once:

* ``raise_before``: the call fails without effect (a connection refused);
* ``raise_after``: the call takes effect and its answer is lost (a connection dropped);
* ``freeze``: the worker stops at its first storage call from the ``at``-th on (a process
  paused, a network partition), until the test thaws it, maybe long after its lease lapsed;
* ``kill_before`` / ``kill_after``: the worker dies there (before or after the effect). From
  then on every call of that job fails with :class:`WorkerKilled` and has no effect: the code
  still unwinds (``finally`` blocks run), but nothing it tries reaches any system, as when the
  process is gone. The lease it held stays until it expires.

Calls outside a job (the scheduler's tick, the final checks) are never faulted.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, TypeVar

T = TypeVar("T")

FaultKind = Literal["raise_before", "raise_after", "kill_before", "kill_after", "freeze"]


class WorkerKilled(BaseException):
    """The worker process running this job is gone (a BaseException: nothing may catch it)."""


@dataclass(frozen=True)
class Fault:
    """Where a job fails and how."""

    kind: FaultKind
    at: int
    """The index (from 0) of the job's call that fails (among the calls ``on`` names)."""
    on: str | None = None
    """Only calls whose name starts with this count (``"marketo.write"``…); ``None``: all."""


@dataclass
class JobCalls:
    """The calls one job has made so far, and its fault."""

    fault: Fault | None = None
    calls: int = 0
    matching: int = 0
    """Calls so far that the fault's ``on`` names."""
    dead: bool = False
    fired: str | None = None
    """What the fault hit (``"table.update_entity"`` …), once it fired."""
    log: list[str] = field(default_factory=list)
    frozen: Callable[[], None] | None = None
    """Called (from the frozen call's thread) when a ``freeze`` fault stops the job."""
    thaw: threading.Event = field(default_factory=threading.Event)
    """Set to let a frozen job go on."""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def arrive(self, call: str) -> str | None:
        """Count a call; the fault kind to apply now, if any (raises if the worker is dead)."""
        with self._lock:
            if self.dead:
                raise WorkerKilled(f"the worker died earlier; {call} never happens")
            self.calls += 1
            self.log.append(call)
            if self.fault is None or self.fired is not None:
                return None
            if self.fault.on is not None and not call.startswith(self.fault.on):
                return None
            index = self.matching
            self.matching += 1
            if self.fault.kind == "freeze":
                # A frozen worker stops in a storage call (which runs in a worker thread).
                if index < self.fault.at or not call.startswith("table."):
                    return None
            elif self.fault.at != index:
                return None
            self.fired = call
            if self.fault.kind == "kill_before":
                self.dead = True
                raise WorkerKilled(f"the worker died before {call}")
            return self.fault.kind

    def is_frozen(self) -> bool:
        """A ``freeze`` fault fired and the job has not been let go on."""
        return (
            self.fault is not None
            and self.fault.kind == "freeze"
            and self.fired is not None
            and not self.thaw.is_set()
        )

    def kill(self, call: str) -> None:
        with self._lock:
            self.dead = True
        raise WorkerKilled(f"the worker died after {call}")


CURRENT: contextvars.ContextVar[JobCalls | None] = contextvars.ContextVar(
    "model_job_calls", default=None
)


def enter(call: str, failure: Callable[[str], BaseException]) -> str | None:
    """Before the effect of the current job's call named ``call``: count it, fail it if its
    fault says so; returns the fault to apply after the effect (see :func:`leave`)."""
    job = CURRENT.get()
    kind = job.arrive(call) if job is not None else None
    if kind == "raise_before":
        raise failure(call)
    if job is not None and kind == "freeze":
        if job.frozen is not None:
            job.frozen()
        if not job.thaw.wait(timeout=60):
            job.dead = True  # a harness bug, reported by World.close; never hang the suite
        if job.dead:
            raise WorkerKilled(f"the worker died while frozen in {call}")
    return kind


def leave(call: str, kind: str | None, failure: Callable[[str], BaseException]) -> None:
    """After the effect: lose the answer, or die, if the fault says so."""
    job = CURRENT.get()
    if job is None or kind is None:
        return
    if kind == "raise_after":
        raise failure(call)
    if kind == "kill_after":
        job.kill(call)


def checkpoint(
    call: str,
    effect: Callable[[], T],
    failure: Callable[[str], BaseException],
) -> T:
    """Run ``effect`` as the current job's call named ``call``, applying its fault.

    ``failure(call)`` makes the exception the outside system raises for a failed call.
    """
    kind = enter(call, failure)
    result = effect()
    leave(call, kind, failure)
    return result


def arrive_only(call: str) -> None:
    """A call that is never faulted itself but does not happen once its worker is dead."""
    job = CURRENT.get()
    if job is not None and job.dead:
        raise WorkerKilled(f"the worker died earlier; {call} never happens")
