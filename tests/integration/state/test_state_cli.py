"""``dmsync instance``, ``dmsync errors`` and ``dmsync status`` against Azurite."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType

import pytest

from dmsync.cli import main
from emulators.azurite import AzuriteInstance
from shared.budget.rules import Holding, Ledger
from shared.clock import ManualClock
from shared.jobs import Direction
from shared.marketo.shared_governor import marketo_budget, marketo_day
from shared.settings import MarketoSettings
from shared.state.instances import MARKETO_COPY_REFUSAL, InstanceStatus
from shared.state.store import StateStore
from shared.state.streams import StreamId
from shared.state.sync_errors import PENDING_CODE, FailedRecord
from shared.state.watermarks import RunCounts

pytestmark = pytest.mark.integration

STREAM = StreamId("prod", "contact", Direction.DYNAMICS_TO_MARKETO)


@pytest.fixture
def clock() -> ManualClock:
    """Stores in these tests write at the real time: the CLI reads with the system clock."""
    return ManualClock(start=datetime.now(UTC))


@pytest.fixture
def dmsync(
    azurite: AzuriteInstance,
    unique_name: str,
    store: StateStore,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
):  # type: ignore[no-untyped-def]
    """Runs ``dmsync`` in-process on this test's tables; returns (exit code, stdout, stderr)."""
    monkeypatch.setenv("AzureWebJobsStorage", azurite.connection_string)

    def run(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main([*argv, "--table-prefix", unique_name])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


def test_instance_add_list_show(dmsync, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Instances are registered from flags and a config file, then listed and shown."""
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"entities": ["contact"], "schedule": "0 */1 * * * *"}))
    code, out, _ = dmsync(
        "instance",
        "add",
        "prod",
        "--dynamics-url",
        "https://contoso.crm.dynamics.com",
        "--munchkin-id",
        "123-ABC-456",
        "--integrated",
        "--config",
        str(config),
    )
    assert code == 0 and "integrated_with_dynamics: yes" in out
    assert dmsync("instance", "add", "dev")[0] == 0
    code, out, _ = dmsync("instance", "list")
    lines = out.splitlines()
    assert lines[0].split()[:2] == ["INSTANCE", "STATUS"]
    assert [line.split()[0] for line in lines[1:]] == ["dev", "prod"]
    code, out, _ = dmsync("instance", "show", "prod", "--json")
    assert json.loads(out)["config"]["entities"] == ["contact"]
    code, _, err = dmsync("instance", "show", "nope")
    assert code == 2 and "does not exist" in err


def test_instance_copy_refuses_integrated_and_copies_otherwise(dmsync) -> None:  # type: ignore[no-untyped-def]
    """The refusal is exit 2 with Marketo's words; a plain copy prints the new instance."""
    dmsync("instance", "add", "prod", "--integrated")
    code, out, err = dmsync("instance", "copy", "prod", "prod-copy")
    assert code == 2 and MARKETO_COPY_REFUSAL in err and out == ""
    dmsync("instance", "add", "plain")
    code, out, _ = dmsync("instance", "copy", "plain", "plain-copy", "--json")
    copied = json.loads(out)
    assert (copied["instance"], copied["status"], copied["copied_from"]) == (
        "plain-copy",
        "paused",
        "plain",
    )


def test_errors_lists_filters_and_prints_json(
    dmsync, store: StateStore, clock: ManualClock
) -> None:  # type: ignore[no-untyped-def]
    """Open errors show as a table; --entity filters; --json carries the full message."""
    store.errors.record(
        FailedRecord(STREAM, "update", "1003", "Field 'email' invalid " * 10, dynamics_id="d-1")
    )
    store.errors.record(
        FailedRecord(
            StreamId("prod", "lead", Direction.MARKETO_TO_DYNAMICS),
            "create",
            "0x1",
            "dup",
            marketo_id="55",
        )
    )
    code, out, _ = dmsync("errors", "prod")
    assert code == 0
    assert out.splitlines()[0].startswith("LAST SEEN")
    assert len(out.splitlines()) == 3 and "d-1" in out and "55" in out
    code, out, _ = dmsync("errors", "prod", "--entity", "lead", "--json")
    [only] = json.loads(out)
    assert (only["marketo_id"], only["attempts"], only["direction"]) == ("55", 1, "m2d")
    code, out, _ = dmsync("errors", "prod", "--since", "2000-01-01T00:00:00Z", "--json")
    assert len(json.loads(out)) == 2
    code, out, _ = dmsync("errors", "other")
    assert "no open sync errors for other" in out
    code, _, err = dmsync("errors", "prod", "--since", "yesterday")
    assert code == 2 and "yesterday" in err


def test_status_shows_phase_progress_lease_and_errors(
    dmsync, store: StateStore, clock: ManualClock
) -> None:  # type: ignore[no-untyped-def]
    """Per stream: counters, progress, lease holder and open errors, as table and JSON."""
    dmsync("instance", "add", "prod", "--integrated")
    seq = store.watermarks.start_run(STREAM).sequence
    store.watermarks.advance(
        STREAM,
        sequence=seq,
        cursor="next",
        counts=RunCounts(read=250, written=240, skipped=5, failed=5),
        total_expected=1000,
    )
    store.leases.acquire(STREAM, "host-1/worker-3", timedelta(hours=1))
    store.errors.record(FailedRecord(STREAM, "update", "1003", "bad", dynamics_id="d-1"))
    code, out, _ = dmsync("status", "--details")
    assert code == 0
    assert "instance prod (active; integrated with Dynamics)" in out
    row = next(line for line in out.splitlines() if line.startswith("contact"))
    assert "250/1000 (25%)" in row and "initial" in row and "host-1/worker-3" in row
    code, out, _ = dmsync("status", "prod", "--json")
    [report] = json.loads(out)
    [stream] = report["streams"]
    assert stream["progress"] == {"done": 250, "total": 1000}
    assert (stream["open_errors"], stream["records_written"], stream["sequence"]) == (1, 240, 1)
    assert stream["lease_holder"] == "host-1/worker-3"


def test_instance_pause_and_resume(dmsync, store: StateStore) -> None:  # type: ignore[no-untyped-def]
    """An operator pauses and resumes; a self-suspended instance is not simply resumed."""
    assert dmsync("instance", "add", "ops", "--integrated")[0] == 0
    code, out, _ = dmsync("instance", "pause", "ops", "--reason", "maintenance window")
    assert code == 0
    assert "paused" in out
    assert "maintenance window" in out
    code, out, _ = dmsync("instance", "resume", "ops")
    assert (code, "active" in out) == (0, True)
    store.instances.set_status("ops", InstanceStatus.SUSPENDED, "sandbox refresh detected")
    code, _, err = dmsync("instance", "resume", "ops")
    assert code == 2
    assert "dmsync instance relink" in err


def test_errors_keep_records_waiting_for_a_dependency_apart(  # type: ignore[no-untyped-def]
    dmsync, store: StateStore
) -> None:
    """DEPENDENCY_PENDING rows are not errors: listed only with --pending, counted apart."""
    store.errors.record_many([
        FailedRecord(STREAM, "create", "1003", "bad value", dynamics_id="a1"),
        FailedRecord(STREAM, "link", PENDING_CODE, "waiting for company", dynamics_id="b2"),
    ])  # fmt: skip
    code, out, _ = dmsync("errors", "prod")
    assert code == 0
    assert "1003" in out
    assert "b2" not in out
    assert "1 records wait for a linked record" in out
    code, out, _ = dmsync("errors", "prod", "--pending", "--json")
    assert [e["dynamics_id"] for e in json.loads(out)] == ["b2"]
    code, out, _ = dmsync("status", "prod", "--json")
    [stream] = json.loads(out)[0]["streams"]
    assert (stream["open_errors"], stream["pending_links"]) == (1, 1)


def test_status_shows_the_shared_api_budgets(dmsync, store: StateStore) -> None:  # type: ignore[no-untyped-def]
    """The budget rows: calls in the window, in flight and today's count, all processes."""
    settings = MarketoSettings.model_validate(
        {
            "MARKETO_BASE_URL": "https://123-ABC-456.mktorest.com",
            "MARKETO_CLIENT_ID": "client",
            "MARKETO_CLIENT_SECRET": "secret",
            "MARKETO_CALLS_PER_20S": "40",
        }
    )
    spec = marketo_budget(settings)
    now = time.time()
    ledger = Ledger(
        holders=MappingProxyType(
            {
                "host-a": Holding(expires=now + 10, open=3, concurrency=2),
                "host-b": Holding(expires=now + 10, released=((now + 15, 4),)),
            }
        ),
        day=marketo_day(now),
        day_used=120,
    )
    store.budgets.write(spec.key, ledger, None, system=spec.system, limits=spec.limits)
    code, out, _ = dmsync("status")
    assert code == 0
    row = next(line for line in out.splitlines() if line.startswith("marketo"))
    assert "7/40" in row and "2/5" in row and "120/25000" in row
