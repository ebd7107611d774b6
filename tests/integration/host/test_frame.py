"""The frame, end to end: the real ``dmsync host --until-idle`` runs a small app on Azurite.

tests/fixtures/frame_app: a startup timer enqueues N jobs and one job that always fails; a
queue trigger writes a table row per handled job. Every job must be handled exactly once, the
failing one tried maxDequeueCount (5) times and then found in the poison queue, and the host
must exit 0 on its own once idle.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from azure.storage.queue import QueueClient

from emulators.azurite import AzuriteInstance
from shared.storage import StorageConnection
from tests.integration.host.process import REPO_ROOT, clean_environment, run_host, write_settings

pytestmark = pytest.mark.integration

FRAME_APP = REPO_ROOT / "tests" / "fixtures" / "frame_app"
JOBS = 20


def test_frame_app_runs_to_idle_with_every_job_handled_exactly_once(
    azurite: AzuriteInstance, unique_name: str, tmp_path: Path
) -> None:
    queue_name, table_name = f"{unique_name}-jobs", f"{unique_name}rows"
    settings = write_settings(
        tmp_path / "local.settings.json",
        {
            "AzureWebJobsStorage": azurite.connection_string,
            "FRAME_QUEUE": queue_name,
            "FRAME_TABLE": table_name,
            "FRAME_JOB_COUNT": str(JOBS),
        },
    )
    status, stderr = run_host(
        [
            "--app",
            str(FRAME_APP),
            "--settings",
            str(settings),
            "--until-idle",
            "--max-seconds",
            "60",
        ],
        clean_environment(),
    )
    assert status == 0, stderr

    table = StorageConnection.from_connection_string(azurite.connection_string).table_service()
    rows = list(table.get_table_client(table_name).list_entities())
    handled = [r for r in rows if r["PartitionKey"] == "handled"]
    attempts = [r for r in rows if r["PartitionKey"] == "attempt"]
    assert sorted(int(r["job"]) for r in handled) == list(range(JOBS))  # none lost, none twice
    assert len({r["message_id"] for r in handled}) == JOBS
    assert all(r["dequeue_count"] == 1 for r in handled)
    assert sorted(r["dequeue_count"] for r in attempts) == [1, 2, 3, 4, 5]
    assert len({r["message_id"] for r in attempts}) == 1

    queues = {
        name: QueueClient.from_connection_string(azurite.connection_string, name)
        for name in (queue_name, f"{queue_name}-poison")
    }
    assert queues[queue_name].get_queue_properties().approximate_message_count == 0
    [poisoned] = list(queues[f"{queue_name}-poison"].peek_messages(max_messages=32))
    assert json.loads(base64.b64decode(poisoned.content)) == {"job": "poison"}

    assert stderr.count("Executed 'Functions.enqueue_jobs' (Succeeded") == 1
    assert stderr.count("Executed 'Functions.handle_job' (Succeeded") == JOBS
    assert stderr.count("Executed 'Functions.handle_job' (Failed") == 5
    assert "host stopped (idle)" in stderr
