"""Emulator time: the real clock plus an offset, optionally frozen.

Every time-dependent rule (token lifetime, the 20-second rate window, the daily quota's midnight,
activity dates, bulk batch retention) reads this clock, so the control API can move time forward
or stop it and tests never wait for real seconds to pass.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime


class EmulatorClock:
    """Seconds since the epoch, as the emulated instance sees them."""

    def __init__(self) -> None:
        self._offset = 0.0
        self._frozen_at: float | None = None

    def time(self) -> float:
        """The current emulated time in epoch seconds."""
        if self._frozen_at is not None:
            return self._frozen_at
        return time.time() + self._offset

    def now(self) -> datetime:
        """The current emulated time, timezone-aware UTC."""
        return datetime.fromtimestamp(self.time(), UTC)

    @property
    def frozen(self) -> bool:
        """Whether time stands still until advanced explicitly."""
        return self._frozen_at is not None

    def advance(self, seconds: float) -> None:
        """Move time forward (negative values are refused: activity dates never go back)."""
        if seconds < 0:
            raise ValueError("the emulator clock only moves forward")
        if self._frozen_at is not None:
            self._frozen_at += seconds
        else:
            self._offset += seconds

    def set(self, moment: datetime) -> None:
        """Jump to ``moment`` (must not be earlier than now)."""
        target = moment.timestamp()
        current = self.time()
        if target < current:
            raise ValueError("the emulator clock only moves forward")
        self.advance(target - current)

    def freeze(self) -> None:
        """Stop time at the current instant."""
        if self._frozen_at is None:
            self._frozen_at = self.time()

    def unfreeze(self) -> None:
        """Let time run again from where it stands."""
        if self._frozen_at is not None:
            self._offset = self._frozen_at - time.time()
            self._frozen_at = None

    def reset(self) -> None:
        """Back to real time."""
        self._offset = 0.0
        self._frozen_at = None


_last_formatted: tuple[int, str] = (-1, "")


def iso_seconds(epoch: float) -> str:
    """``2015-03-17T00:18:40Z``: the datetime format of Marketo's lead and activity records."""
    global _last_formatted
    second = int(epoch)
    if _last_formatted[0] != second:  # a 300-record write formats the same second many times
        _last_formatted = (
            second,
            datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        )
    return _last_formatted[1]
