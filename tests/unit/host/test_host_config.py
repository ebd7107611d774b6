"""host.json extensions.queues: defaults, bounds, TimeSpans and app-setting overrides."""

from __future__ import annotations

import pytest

from dmsync.host.host_config import QueueOptions, parse_timespan, queue_options
from shared.errors import ConfigurationError


def test_defaults_follow_the_extension() -> None:
    """batchSize 16, threshold batchSize/2, 5 tries, visibility 0, base64; polling 2 s locally."""
    options = queue_options({}, {})
    assert options == QueueOptions(
        batch_size=16,
        new_batch_threshold=8,
        visibility_timeout=0.0,
        max_dequeue_count=5,
        max_polling_interval=2.0,
        message_encoding="base64",
    )
    assert options.max_concurrent_messages == 24


def test_host_json_values_and_case_insensitive_keys() -> None:
    host_json = {
        "Extensions": {
            "Queues": {
                "BatchSize": 4,
                "maxDequeueCount": "3",
                "visibilityTimeout": "00:00:30",
                "maxPollingInterval": "00:00:00.250",
                "messageEncoding": "None",
            }
        }
    }
    options = queue_options(host_json, {})
    assert (options.batch_size, options.new_batch_threshold) == (4, 2)
    assert options.max_dequeue_count == 3
    assert options.visibility_timeout == 30.0
    assert options.max_polling_interval == 0.25
    assert options.message_encoding == "none"


def test_app_settings_override_host_json() -> None:
    """AzureFunctionsJobHost__extensions__queues__<name> wins over host.json, any case."""
    host_json = {"extensions": {"queues": {"batchSize": 4, "newBatchThreshold": 1}}}
    environ = {
        "AzureFunctionsJobHost__extensions__queues__batchSize": "10",
        "azurefunctionsjobhost__extensions__queues__maxdequeuecount": "2",
    }
    options = queue_options(host_json, environ)
    assert (options.batch_size, options.new_batch_threshold, options.max_dequeue_count) == (
        10,
        1,
        2,
    )


@pytest.mark.parametrize(
    ("queues", "message"),
    [
        ({"batchSize": 33}, "batchSize .* between 1 and 32"),
        ({"batchSize": 0}, "batchSize .* between 1 and 32"),
        ({"maxDequeueCount": 0}, "maxDequeueCount .* at least 1"),
        ({"newBatchThreshold": -1}, "newBatchThreshold .* at least 0"),
        ({"batchSize": "many"}, "batchSize .* whole number"),
        (
            {"maxPollingInterval": "00:00:00.050"},
            r"maxPollingInterval\) must be at least 00:00:00.100",
        ),
        ({"visibilityTimeout": "soon"}, r"visibilityTimeout\) must be a TimeSpan"),
        ({"messageEncoding": "utf8"}, r"messageEncoding\) must be 'base64' or 'none'"),
    ],
)
def test_bad_values_name_the_option(queues: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        queue_options({"extensions": {"queues": queues}}, {})


def test_timespans() -> None:
    assert parse_timespan("00:01:00", name="x") == 60.0
    assert parse_timespan("1.02:00:00", name="x") == 93_600.0
    assert parse_timespan("00:00:00.5", name="x") == 0.5
    assert parse_timespan("00:10", name="x") == 600.0
    assert parse_timespan("2", name="x") == 172_800.0  # a bare integer is days in .NET
    with pytest.raises(ConfigurationError, match="out of range"):
        parse_timespan("00:61:00", name="x")
