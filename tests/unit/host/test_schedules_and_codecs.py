"""Pure pieces: NCRONTAB parsing, message text codec, polling backoff."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from dmsync.host.message_codec import (
    MessageDecodeError,
    decode_message_text,
    encode_message_text,
)
from dmsync.host.ncrontab import NcrontabSchedule
from dmsync.host.polling import BackoffState, PollingBackoff, next_polling_state
from shared.errors import ConfigurationError

T0 = datetime(2026, 3, 2, 9, 29, 59, tzinfo=UTC)  # a Monday


def test_six_field_schedule_has_seconds_first() -> None:
    schedule = NcrontabSchedule.parse("0 30 9 * * 1-5", where="schedule")
    assert schedule.has_seconds
    assert schedule.next_after(T0) == datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
    assert schedule.next_after(datetime(2026, 3, 2, 9, 30, tzinfo=UTC)) == datetime(
        2026, 3, 3, 9, 30, tzinfo=UTC
    )


def test_five_field_schedule_has_no_seconds() -> None:
    schedule = NcrontabSchedule.parse("*/15 * * * *", where="schedule")
    assert not schedule.has_seconds
    assert schedule.next_after(T0) == datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


@pytest.mark.parametrize("expression", ["", "* * * *", "0 0 0 * * * 2026", "61 * * * * *", "x y"])
def test_invalid_schedules_are_refused(expression: str) -> None:
    with pytest.raises(ConfigurationError, match="schedule of f"):
        NcrontabSchedule.parse(expression, where="schedule of f")


def test_use_monitor_default_is_off_only_for_sub_minute_schedules() -> None:
    assert NcrontabSchedule.parse("0 */1 * * * *", where="s").default_use_monitor(T0)
    assert NcrontabSchedule.parse("0 0 */6 * * *", where="s").default_use_monitor(T0)
    assert not NcrontabSchedule.parse("*/30 * * * * *", where="s").default_use_monitor(T0)


def test_base64_round_trip_and_tolerated_whitespace() -> None:
    assert encode_message_text("héllo".encode(), "base64") == "aMOpbGxv"
    assert decode_message_text("aMOp\nbGxv", "base64") == "héllo".encode()
    assert decode_message_text("{raw}", "none") == b"{raw}"
    assert encode_message_text(b"{raw}", "none") == "{raw}"


@pytest.mark.parametrize("text", ["not base64!", "abc", "aGVsbG8"])
def test_invalid_base64_is_a_decode_error(text: str) -> None:
    with pytest.raises(MessageDecodeError):
        decode_message_text(text, "base64")


def test_binary_body_cannot_be_sent_with_encoding_none() -> None:
    with pytest.raises(MessageDecodeError, match="UTF-8"):
        encode_message_text(b"\xff\xfe", "none")


def test_backoff_grows_randomized_and_exponentially_to_the_maximum() -> None:
    """min, then min + r*2^(n-1)*min with r in [0.8, 1.2], capped; a found batch resets it."""
    state = BackoffState(delay=0.1)
    delays = []
    for _ in range(8):
        state = next_polling_state(state, found_messages=False, minimum=0.1, maximum=2.0, draw=0.5)
        delays.append(round(state.delay, 6))
    assert delays == [0.1, 0.2, 0.3, 0.5, 0.9, 1.7, 2.0, 2.0]
    low = next_polling_state(
        BackoffState(0.1, 2), found_messages=False, minimum=0.1, maximum=2.0, draw=0.0
    )
    high = next_polling_state(
        BackoffState(0.1, 2), found_messages=False, minimum=0.1, maximum=2.0, draw=0.999999
    )
    assert low.delay == pytest.approx(0.26) and high.delay == pytest.approx(0.34, abs=1e-5)
    found = next_polling_state(state, found_messages=True, minimum=0.1, maximum=2.0, draw=0.5)
    assert found == BackoffState(delay=0.1, exponent=1)


def test_polling_backoff_wrapper_resets() -> None:
    backoff = PollingBackoff(0.1, 1.0, random.Random(1))
    for _ in range(10):
        last = backoff.after_poll(found_messages=False)
    assert last == 1.0
    backoff.reset()
    assert backoff.after_poll(found_messages=False) == pytest.approx(0.1)
