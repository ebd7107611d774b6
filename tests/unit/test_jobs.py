"""Job messages: round trip, and clear rejection of anything this build cannot run."""

from __future__ import annotations

import json

import pytest

from shared.errors import FatalError, InvalidMessageError
from shared.jobs import Direction, JobReason, SyncJob, parse_job


def test_round_trip() -> None:
    """What the scheduler writes, the worker reads back unchanged."""
    job = SyncJob(instance_id="contoso", entity="contact", direction=Direction.DYNAMICS_TO_MARKETO)
    assert parse_job(job.to_json()) == job
    assert parse_job(job.to_json().encode()) == job


def test_continuation_keeps_the_stream_and_takes_a_new_id() -> None:
    """A continuation names the same stream, a fresh job id and the new sequence."""
    job = SyncJob(instance_id="i", entity="lead", direction=Direction.MARKETO_TO_DYNAMICS)
    nxt = job.continuation(sequence=7)
    assert (nxt.instance_id, nxt.entity, nxt.direction) == ("i", "lead", job.direction)
    assert nxt.job_id != job.job_id and nxt.sequence == 7
    assert nxt.reason is JobReason.CONTINUATION


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"\xff\xfe", "not valid JSON"),
        ("not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"instance_id": "i"}', "unknown version None"),
        ('{"version": 2, "instance_id": "i"}', "unknown version 2"),
        ('{"version": 1, "entity": "lead", "direction": "d2m"}', "instance_id: Field required"),
        ('{"version": 1, "instance_id": "i", "entity": "lead", "direction": "up"}', "direction"),
        (
            '{"version": 1, "instance_id": "i", "entity": "lead", "direction": "d2m", "x": 1}',
            "x: Extra inputs are not permitted",
        ),
    ],
)
def test_bad_messages_are_rejected_clearly(body: str | bytes, expected: str) -> None:
    """Each kind of bad body raises a fatal InvalidMessageError that says what is wrong."""
    with pytest.raises(InvalidMessageError, match=expected) as info:
        parse_job(body)
    assert isinstance(info.value, FatalError)


def test_message_stays_small() -> None:
    """A job is far below the 48 KiB a base64 queue message can carry."""
    job = SyncJob(instance_id="x" * 128, entity="y" * 64, direction=Direction.DYNAMICS_TO_MARKETO)
    assert len(job.to_json()) < 1024
    assert json.loads(job.to_json())["version"] == 1
