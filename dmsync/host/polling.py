"""The queue listener's polling delay: randomized exponential backoff while a queue is empty.

The extension waits 100 ms after a poll that found messages, and after each empty poll grows the
wait as ``minimum + r * 2^(n-1) * minimum`` with ``r`` drawn from [0.8, 1.2], until it reaches
``maxPollingInterval`` [reference §3, QueueListener's randomized exponential backoff].
"""

from __future__ import annotations

import random
from dataclasses import dataclass

RANDOMIZATION = 0.2
"""``r`` is drawn from ``[1 - RANDOMIZATION, 1 + RANDOMIZATION]``."""


@dataclass(frozen=True)
class BackoffState:
    """Where the backoff stands: the current delay and the exponent of the next increase."""

    delay: float
    exponent: int = 0


def next_polling_state(
    state: BackoffState, *, found_messages: bool, minimum: float, maximum: float, draw: float
) -> BackoffState:
    """The state after a poll (its ``delay`` is how long to wait before the next poll).

    Args:
        state: the state before this poll.
        found_messages: whether the poll returned any message.
        minimum: the shortest delay (100 ms), also the growth unit.
        maximum: ``maxPollingInterval``.
        draw: a number in [0, 1) that picks ``r`` (pass ``random.random()``).
    """
    if found_messages:
        return BackoffState(delay=minimum, exponent=1)
    if state.delay >= maximum:
        return BackoffState(delay=maximum, exponent=state.exponent)
    factor = (1.0 - RANDOMIZATION) + 2 * RANDOMIZATION * draw
    grown = minimum
    if state.exponent > 0:
        grown += factor * 2.0 ** (state.exponent - 1) * minimum
    if grown < maximum:
        return BackoffState(delay=grown, exponent=state.exponent + 1)
    return BackoffState(delay=maximum, exponent=state.exponent)


class PollingBackoff:
    """The mutable wrapper a listener keeps: call :meth:`after_poll` after every receive."""

    def __init__(self, minimum: float, maximum: float, rng: random.Random | None = None) -> None:
        self._minimum = minimum
        self._maximum = max(minimum, maximum)
        self._rng = rng or random.Random()
        self._state = BackoffState(delay=minimum)

    def after_poll(self, *, found_messages: bool) -> float:
        """Record a poll's outcome and return the delay before the next poll."""
        self._state = next_polling_state(
            self._state,
            found_messages=found_messages,
            minimum=self._minimum,
            maximum=self._maximum,
            draw=self._rng.random(),
        )
        return self._state.delay

    def reset(self) -> None:
        """Start again from the minimum (a message was just added to the queue by this host)."""
        self._state = BackoffState(delay=self._minimum)
