"""``host.json`` ``extensions.queues`` options, with ``AzureFunctionsJobHost__…`` overrides.

Defaults and bounds are those of the storage-queues extension's ``QueuesOptions`` [reference §3];
``maxPollingInterval`` defaults to 2 s, the value the host uses when it runs locally (in Azure it
is one minute). Any value may be overridden by the app setting
``AzureFunctionsJobHost__extensions__queues__<name>`` [reference §5]; like .NET configuration,
keys are matched without regard to case.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from shared.errors import ConfigurationError

OVERRIDE_PREFIX = "AzureFunctionsJobHost__extensions__queues__"
"""App settings with this prefix override ``host.json`` ``extensions.queues`` values."""

MIN_POLLING_INTERVAL = 0.1
"""The extension's floor for ``maxPollingInterval`` (100 ms), also where idle backoff starts."""

LOCAL_MAX_POLLING_INTERVAL = 2.0
"""``maxPollingInterval`` default when the host runs locally (Azure: 60 s) [reference §3]."""

_TIMESPAN = re.compile(
    r"^(?:(?P<days>\d+)\.)?(?P<hours>\d{1,2}):(?P<minutes>\d{1,2})"
    r"(?::(?P<seconds>\d{1,2})(?:\.(?P<fraction>\d{1,7}))?)?$"
)


@dataclass(frozen=True)
class QueueOptions:
    """The queue-trigger behaviour the host applies to every queue function."""

    batch_size: int = 16
    """Messages fetched per receive, run in parallel (1-32)."""
    new_batch_threshold: int = 8
    """Fetch the next batch once this many or fewer messages are still being processed."""
    visibility_timeout: float = 0.0
    """Seconds a failed message stays invisible before it is retried."""
    max_dequeue_count: int = 5
    """Attempts before a failing message is moved to ``<queue>-poison``."""
    max_polling_interval: float = LOCAL_MAX_POLLING_INTERVAL
    """Ceiling, in seconds, of the idle backoff between polls of an empty queue."""
    message_encoding: Literal["base64", "none"] = "base64"
    """How message text encodes the body: base64 (the default) or the text itself."""

    @property
    def max_concurrent_messages(self) -> int:
        """The most messages one queue function can hold at once.

        A new batch is fetched only while at most ``new_batch_threshold`` are in flight, and a
        batch brings at most ``batch_size``, so the bound is their sum [reference §3].
        """
        return self.batch_size + self.new_batch_threshold


def parse_timespan(value: object, *, name: str) -> float:
    """Seconds from a .NET TimeSpan string (``[d.]hh:mm[:ss[.fffffff]]``) or a plain day count.

    Raises:
        ConfigurationError: naming the setting when the text is not a TimeSpan.
    """
    text = str(value).strip()
    if text.isdigit():  # .NET reads a bare integer as a number of days
        return int(text) * 86_400.0
    match = _TIMESPAN.match(text)
    if match is None:
        raise ConfigurationError(
            f"{name} must be a TimeSpan such as 00:00:30 or 00:00:00.500, got {text!r}"
        )
    parts = match.groupdict()
    hours, minutes = int(parts["hours"]), int(parts["minutes"])
    seconds = int(parts["seconds"] or 0)
    if hours > 23 or minutes > 59 or seconds > 59:
        raise ConfigurationError(f"{name} has an hour, minute or second out of range: {text!r}")
    fraction = float("0." + parts["fraction"]) if parts["fraction"] else 0.0
    days = int(parts["days"] or 0)
    return days * 86_400.0 + hours * 3600.0 + minutes * 60.0 + seconds + fraction


def read_host_json(path: Path) -> dict[str, Any]:
    """The parsed ``host.json`` (empty when the file is absent).

    Raises:
        ConfigurationError: if the file exists but is not a JSON object.
    """
    if not path.exists():
        return {}
    try:
        document = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigurationError(f"{path} is not a readable JSON file: {exc}") from None
    if not isinstance(document, dict):
        raise ConfigurationError(f"{path} must hold a JSON object")
    return document


def _lower_keys(mapping: Mapping[str, Any]) -> dict[str, Any]:
    return {str(key).lower(): value for key, value in mapping.items()}


def _queues_section(host_json: Mapping[str, Any]) -> dict[str, Any]:
    extensions = _lower_keys(host_json).get("extensions") or {}
    if not isinstance(extensions, dict):
        raise ConfigurationError("host.json: 'extensions' must be an object")
    queues = _lower_keys(extensions).get("queues") or {}
    if not isinstance(queues, dict):
        raise ConfigurationError("host.json: 'extensions.queues' must be an object")
    return _lower_keys(queues)


def _overrides(environ: Mapping[str, str]) -> dict[str, str]:
    prefix = OVERRIDE_PREFIX.lower()
    return {
        key.lower().removeprefix(prefix): value
        for key, value in environ.items()
        if key.lower().startswith(prefix)
    }


def _integer(raw: object, name: str, low: int, high: int | None = None) -> int:
    try:
        if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
            raise ValueError
        value = int(str(raw).strip()) if not isinstance(raw, int | float) else int(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a whole number, got {raw!r}") from None
    if value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ConfigurationError(f"{name} must be {bounds}, got {value}")
    return value


def queue_options(host_json: Mapping[str, Any], environ: Mapping[str, str]) -> QueueOptions:
    """Queue options from ``host.json`` with app-setting overrides applied.

    Raises:
        ConfigurationError: naming the option that is out of range or malformed.
    """
    values = {**_queues_section(host_json), **_overrides(environ)}

    def label(key: str) -> str:
        return f"host.json extensions.queues.{key} (or {OVERRIDE_PREFIX}{key})"

    batch_size = _integer(values.get("batchsize", 16), label("batchSize"), 1, 32)
    threshold_raw = values.get("newbatchthreshold")
    threshold = (
        batch_size // 2
        if threshold_raw is None
        else _integer(threshold_raw, label("newBatchThreshold"), 0)
    )
    max_dequeue = _integer(values.get("maxdequeuecount", 5), label("maxDequeueCount"), 1)
    visibility = parse_timespan(
        values.get("visibilitytimeout", "00:00:00"), name=label("visibilityTimeout")
    )
    polling = parse_timespan(
        values.get("maxpollinginterval", "00:00:02"), name=label("maxPollingInterval")
    )
    if polling < MIN_POLLING_INTERVAL:
        raise ConfigurationError(f"{label('maxPollingInterval')} must be at least 00:00:00.100")
    encoding = str(values.get("messageencoding", "base64")).strip().lower()
    if encoding not in ("base64", "none"):
        raise ConfigurationError(f"{label('messageEncoding')} must be 'base64' or 'none'")
    return QueueOptions(
        batch_size=batch_size,
        new_batch_threshold=threshold,
        visibility_timeout=visibility,
        max_dequeue_count=max_dequeue,
        max_polling_interval=polling,
        message_encoding="base64" if encoding == "base64" else "none",
    )
