"""Retry policy as small pure functions: how long to wait, and whether to try again.

Both API clients use these; the waiting itself happens through an injected
:class:`~shared.clock.Clock`, so tests can check a schedule without sleeping.

Rules (from the vendor guidance in ``shared/reference``):

* a server-given wait (Dataverse ``Retry-After``, seconds or an HTTP date) is honoured, clamped
  to ``max_retry_after``; a longer demand is not waited out in-process but surfaced, so the
  queue's own visibility delay takes over;
* without one, the wait is exponential from ``base_delay`` (2^n), capped at ``max_delay``, with
  "full jitter" in ``[(1 - jitter) * d, d]`` so a fleet of workers does not retry in lockstep;
* every loop is bounded by ``max_attempts`` (the first try included).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds for one client's retries."""

    max_attempts: int = 5
    """Tries in all, the first included."""
    base_delay: float = 1.0
    """Seconds before the first retry when the server gives no wait."""
    max_delay: float = 30.0
    """Cap on a computed (not server-given) wait."""
    max_retry_after: float = 120.0
    """The longest server-given wait honoured in-process; longer ones are surfaced."""
    jitter: float = 0.25
    """Fraction of a computed wait that is randomised away."""

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if not 0 <= self.jitter <= 1:
            raise ValueError("jitter must be within [0, 1]")


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date.

    Returns ``None`` when the header is absent or unreadable; never a negative number.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, (when - now).total_seconds())


def backoff_delay(attempt: int, policy: RetryPolicy, rng: random.Random | None = None) -> float:
    """The computed wait before retry number ``attempt`` (1 = the first retry)."""
    ceiling = min(policy.max_delay, policy.base_delay * 2.0 ** max(0, attempt - 1))
    draw = (rng or random).random()
    return ceiling * (1.0 - policy.jitter * draw)


def next_delay(
    attempt: int,
    policy: RetryPolicy,
    retry_after: float | None,
    rng: random.Random | None = None,
) -> float | None:
    """How long to wait before retry ``attempt``, or ``None`` to stop retrying.

    Args:
        attempt: the retry about to happen (1 after the first failure).
        policy: the bounds.
        retry_after: the server's requested wait in seconds, if it gave one.
        rng: the jitter source (inject a seeded one in tests).
    """
    if attempt >= policy.max_attempts:
        return None
    if retry_after is not None:
        if retry_after > policy.max_retry_after:
            return None
        return retry_after
    return backoff_delay(attempt, policy, rng)
