"""Pure parts of the operator commands: the checklist's lines, the export's cells, the CLI's
default action."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from dmsync.cli import with_default_action
from shared.jobs import Direction
from shared.state.error_export import read_csv, read_json, rows_of, write_csv, write_json
from shared.state.streams import StreamId
from shared.state.sync_errors import SyncError
from shared.validation.results import Checklist, failed, passed, skipped, warned

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def test_the_checklist_is_ok_only_without_a_failure_and_groups_healthy_lines() -> None:
    checklist = Checklist()
    checklist.add(passed("a", "Dynamics table contact", "change tracking on"))
    checklist.add(passed("b", "Dynamics table contact", "readable"))
    checklist.add(warned("c", "Dynamics table lead", "no filter column", "add it"))
    assert checklist.ok
    checklist.add(failed("d", "Marketo sign-in", "no token", "check MARKETO_CLIENT_SECRET"))
    checklist.add(skipped("e", "Marketo objects", "no token"))
    assert not checklist.ok
    lines = checklist.render().splitlines()
    assert lines[0] == "✔ Dynamics table contact: change tracking on; readable"
    assert lines[1] == "⚠ Dynamics table lead: no filter column"
    assert lines[3] == "✘ Marketo sign-in: no token"
    assert lines[4] == "    → check MARKETO_CLIENT_SECRET"
    assert lines[5] == "· Marketo objects: not checked: no token"
    assert lines[-1] == "2 passed, 1 warnings, 1 failed, 1 not checked"
    assert [c["status"] for c in checklist.to_json()["checks"]] == [
        "passed", "passed", "warning", "failed", "skipped",
    ]  # fmt: skip


def test_errors_without_an_action_lists() -> None:
    assert with_default_action(["errors", "prod"]) == ["errors", "list", "prod"]
    assert with_default_action(["errors", "--json", "prod"]) == ["errors", "list", "--json", "prod"]
    assert with_default_action(["errors", "retry", "x"]) == ["errors", "retry", "x"]
    assert with_default_action(["errors", "--help"]) == ["errors", "--help"]
    assert with_default_action(["status", "prod"]) == ["status", "prod"]


text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)


@settings(deadline=None, max_examples=60)
@given(
    messages=st.lists(text, min_size=1, max_size=5), codes=st.lists(text, min_size=5, max_size=5)
)
def test_any_message_round_trips_through_csv_and_json(
    messages: list[str], codes: list[str]
) -> None:
    errors = [
        SyncError(
            stream=StreamId("prod", "contact", Direction.DYNAMICS_TO_MARKETO),
            operation="update",
            code=codes[i],
            message=message,
            dynamics_id=f"0000000{i}-0000-4000-8000-000000000000",
            marketo_id=None if i % 2 else str(i),
            first_seen=T0,
            last_seen=T0 + timedelta(seconds=i),
            attempts=i + 1,
            next_retry_at=None if i % 2 else T0,
            resolved=bool(i % 2),
            resolved_at=T0 if i % 2 else None,
        )
        for i, message in enumerate(messages)
    ]
    assert read_csv(write_csv(errors)) == rows_of(errors)
    assert read_json(write_json(errors)) == rows_of(errors)
