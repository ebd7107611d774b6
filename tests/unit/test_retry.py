"""Retry policy: bounded attempts, honoured and clamped Retry-After, capped jittered backoff."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from shared.retry import RetryPolicy, backoff_delay, next_delay, parse_retry_after

NOW = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("7", 7.0),
        (" 2.5 ", 2.5),
        ("-3", 0.0),
        ("Wed, 25 Nov 2026 12:00:30 GMT", 30.0),
        ("Wed, 25 Nov 2026 11:00:00 GMT", 0.0),
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    """Seconds and HTTP dates are both read; junk is ignored; never negative."""
    assert parse_retry_after(header, NOW) == expected


def test_backoff_grows_exponentially_and_is_capped() -> None:
    """Without jitter the ceiling doubles per attempt and stops at max_delay."""
    policy = RetryPolicy(base_delay=1.0, max_delay=10.0, jitter=0.0)
    assert [backoff_delay(n, policy) for n in range(1, 6)] == [1.0, 2.0, 4.0, 8.0, 10.0]


def test_jitter_stays_within_its_band() -> None:
    """Each jittered wait lies in [(1 - jitter) * ceiling, ceiling]."""
    policy = RetryPolicy(base_delay=4.0, max_delay=100.0, jitter=0.25)
    rng = random.Random(1)
    waits = [backoff_delay(1, policy, rng) for _ in range(200)]
    assert min(waits) >= 3.0
    assert max(waits) <= 4.0
    assert len(set(waits)) > 100


def test_attempts_are_bounded() -> None:
    """The policy stops after max_attempts tries in all."""
    policy = RetryPolicy(max_attempts=3, jitter=0.0)
    assert next_delay(1, policy, None) is not None
    assert next_delay(2, policy, None) is not None
    assert next_delay(3, policy, None) is None


def test_server_wait_is_honoured_but_not_beyond_the_clamp() -> None:
    """Retry-After wins over backoff; a demand past max_retry_after ends in-process retries."""
    policy = RetryPolicy(max_retry_after=60.0)
    assert next_delay(1, policy, 42.0) == 42.0
    assert next_delay(1, policy, 61.0) is None


def test_policy_validates_its_bounds() -> None:
    """Nonsense bounds are refused when the policy is built."""
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="jitter"):
        RetryPolicy(jitter=2)
