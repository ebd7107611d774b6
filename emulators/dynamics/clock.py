"""The emulator's business clock: real time plus a controllable offset, or a frozen instant.

``createdon``/``modifiedon``, delta-token timestamps and token age (change-tracking expiry), and
the service-protection sliding window all read this clock, so tests move time with
``POST /_emulator/clock`` instead of waiting. Bearer-token lifetimes deliberately do *not* use it
(see ``auth.py``): a client and Entra share real time.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta


class EmulatorClock:
    """UTC "now" that can be advanced, set or frozen; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._offset = 0.0
        self._frozen: datetime | None = None

    def now(self) -> datetime:
        """The emulator's current time, timezone-aware UTC."""
        with self._lock:
            if self._frozen is not None:
                return self._frozen
            return datetime.now(UTC) + timedelta(seconds=self._offset)

    def monotonic(self) -> float:
        """Seconds on a counter that moves with :meth:`advance` (for sliding windows)."""
        with self._lock:
            if self._frozen is not None:
                return self._frozen.timestamp()
            return time.time() + self._offset

    def advance(self, seconds: float) -> datetime:
        """Move time forward (or back, for a negative value); returns the new now."""
        with self._lock:
            if self._frozen is not None:
                self._frozen += timedelta(seconds=seconds)
            else:
                self._offset += seconds
        return self.now()

    def set(self, instant: datetime, *, freeze: bool = False) -> datetime:
        """Jump to ``instant``; with ``freeze`` time then stands still until moved again."""
        if instant.tzinfo is None:
            instant = instant.replace(tzinfo=UTC)
        with self._lock:
            if freeze:
                self._frozen = instant
            else:
                self._frozen = None
                self._offset = (instant - datetime.now(UTC)).total_seconds()
        return self.now()

    def unfreeze(self) -> None:
        """Let time run again from the frozen instant."""
        with self._lock:
            if self._frozen is not None:
                self._offset = (self._frozen - datetime.now(UTC)).total_seconds()
                self._frozen = None

    def reset(self) -> None:
        """Back to real time."""
        with self._lock:
            self._offset = 0.0
            self._frozen = None


def format_datetime(instant: datetime) -> str:
    """Dataverse's UTC ISO form, e.g. ``2023-04-07T21:59:01Z`` (reference §2)."""
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
