"""The shipped host.json queue settings, each with the reason it has its value.

These read the repository's own ``host.json`` through the same parser the local host uses
(:func:`dmsync.host.host_config.queue_options`), so a value that breaks a promise of the README
fails here rather than in production. The reasons:

* ``visibilityTimeout`` is how long a failed job's message stays hidden before the queue retries
  it. A job can fail while a Marketo write it sent is still running on Marketo's side (a read
  timeout or a dropped connection is not resent by the client, because Marketo may still carry
  it out). Marketo gives Sync Leads up to 90 s (Marketo developer docs, "Leads" > "Timeouts"), and
  "closely timed upsert requests can create duplicate records" (same page, "Sync Leads"). So the
  retry must come only after the longest write Marketo may still be processing has finished:
  longer than 90 s plus our client's grace. It must also stay within a few minutes, since the
  design promises a failure costs minutes of delay, never more (design invariant 7).
* ``maxDequeueCount`` is how many attempts a job gets before its message goes to
  ``sync-jobs-poison``. The README promises 5. At least 3, so a job gets through two transient
  outages in a row (a Marketo 604, a storage blip). A poison message then waits for an operator,
  so the tries must not stretch over hours either.
* ``maxPollingInterval`` is the idle poll backoff cap. Continuations are written with the Storage
  SDK rather than an output binding, so the host only finds them by polling (Azure Functions docs,
  "Azure Queue storage trigger" > "Polling algorithm"; Azure's default cap is one minute). At 500 ms
  a long initial sync moves to its next page within half a second. The cost stays at about
  170,000 queue reads a day per instance (README).
* ``messageEncoding`` must match the engine's own ``send_message`` (base64), or every
  continuation would end in the poison queue unread.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from azure.storage.queue import TextBase64EncodePolicy

from dmsync.host.host_config import QueueOptions, parse_timespan, queue_options, read_host_json
from shared.marketo.leads import SYNC_TIMEOUT
from shared.marketo.objects import COMPANIES, OPPORTUNITIES, OPPORTUNITY_ROLES, SALES_PERSONS
from shared.marketo.transport_parts import READ_GRACE
from shared.settings import StorageSettings
from shared.storage import StorageConnection

HOST_JSON = Path(__file__).resolve().parents[3] / "host.json"
LONGEST_MARKETO_WRITE = max(
    SYNC_TIMEOUT,
    *(t.sync_timeout for t in (COMPANIES, OPPORTUNITIES, OPPORTUNITY_ROLES, SALES_PERSONS)),
)
"""Seconds Marketo may keep working on one of our writes (Sync Leads: 90 s)."""


@pytest.fixture(scope="module")
def shipped() -> QueueOptions:
    """The queue options the shipped host.json gives (no app-setting overrides)."""
    return queue_options(read_host_json(HOST_JSON), {})


def test_marketo_sync_leads_allows_ninety_seconds() -> None:
    """The fact the visibility timeout rests on, as the client has it."""
    assert LONGEST_MARKETO_WRITE == 90.0


def test_a_failed_job_is_retried_only_after_marketo_finished_its_write(
    shipped: QueueOptions,
) -> None:
    """visibilityTimeout outlasts our longest Marketo read timeout (90 s + the client's grace)."""
    assert shipped.visibility_timeout > LONGEST_MARKETO_WRITE + READ_GRACE, (
        f"visibilityTimeout {shipped.visibility_timeout:g} s would retry a job while Marketo may "
        f"still be running its write (up to {LONGEST_MARKETO_WRITE:g} s)"
    )


def test_a_failed_job_is_retried_within_minutes(shipped: QueueOptions) -> None:
    """Design invariant 7: a failure delays its stream by minutes at most."""
    assert shipped.visibility_timeout <= 5 * 60


def test_a_job_gets_the_readme_s_five_attempts(shipped: QueueOptions) -> None:
    """README: "ends in sync-jobs-poison after 5 attempts"; two outages in a row survive."""
    assert shipped.max_dequeue_count == 5
    assert shipped.max_dequeue_count >= 3
    retries_span = (shipped.max_dequeue_count - 1) * shipped.visibility_timeout
    assert retries_span <= 30 * 60, "a poisoned job should reach an operator within half an hour"


def test_continuations_are_found_within_half_a_second(shipped: QueueOptions) -> None:
    """The idle poll backs off to 500 ms, not Azure's default minute, and not below the
    host's 100 ms floor; the idle cost stays near the README's 170,000 reads a day."""
    assert 0.1 <= shipped.max_polling_interval <= 0.5
    idle_reads_per_day = 86_400 / shipped.max_polling_interval
    assert idle_reads_per_day <= 175_000


def test_messages_are_base64_as_the_engine_sends_them(shipped: QueueOptions) -> None:
    """The engine's queue client base64-encodes each job (StorageConnection.queue_client)."""
    assert shipped.message_encoding == "base64"
    connection = StorageConnection.from_settings(
        StorageSettings.model_validate({"AzureWebJobsStorage": "UseDevelopmentStorage=true"})
    )
    client = connection.queue_client("sync-jobs")
    assert isinstance(client._message_encode_policy, TextBase64EncodePolicy)


def test_no_job_outlives_the_function_timeout(shipped: QueueOptions) -> None:
    """functionTimeout (10 min) leaves room for a whole job's Marketo writes; the host kills a
    run that exceeds it, and that attempt counts as a failure."""
    document = read_host_json(HOST_JSON)
    function_timeout = parse_timespan(document["functionTimeout"], name="functionTimeout")
    assert function_timeout >= 2 * LONGEST_MARKETO_WRITE
    assert function_timeout <= 10 * 60  # Flex Consumption's default limit for a run
