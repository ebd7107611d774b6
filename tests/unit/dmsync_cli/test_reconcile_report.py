"""The reconcile report: errors grouped by code, never a field value or an e-mail address."""

from __future__ import annotations

from datetime import UTC, datetime

from dmsync.reconcile_report import (
    ReconcileResult,
    group_errors,
    render_problems,
    safe_message,
)
from shared.jobs import Direction
from shared.state.streams import StreamId
from shared.state.sync_errors import SyncError
from shared.sync.reconcile import EntityReconciliation, ReconciliationReport

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def error(
    entity: str, record: str, code: str, message: str, *, resolved: bool = False
) -> SyncError:
    """An error row of the d2m stream of ``entity``."""
    return SyncError(
        stream=StreamId("demo", entity, Direction.DYNAMICS_TO_MARKETO),
        operation="create",
        code=code,
        message=message,
        dynamics_id=record,
        marketo_id=None,
        first_seen=NOW,
        last_seen=NOW,
        attempts=1,
        next_retry_at=NOW,
        resolved=resolved,
    )


def test_safe_message_withholds_values_and_emails() -> None:
    """Marketo's 1001 quotes the refused value; it and any e-mail address are withheld."""
    text = safe_message("1001 Invalid value 'ada.lovelace@'. Required of type 'email'")
    assert "ada" not in text and "'email'" in text
    assert "grace@example.com" not in safe_message("lead grace@example.com exists; value: Grace")
    assert "Grace" not in safe_message("duplicate value: Grace")
    assert safe_message("1004 Lead not found") == "1004 Lead not found"


def test_errors_are_grouped_per_entity_and_code_with_ids() -> None:
    """Largest group first; resolved errors left out; ids sorted; a meaning for known codes."""
    groups = group_errors(
        [
            error("contact", "c2", "1001", "1001 Invalid value 'x@'. Required of type 'email'"),
            error("contact", "c1", "1001", "1001 Invalid value 'y@'. Required of type 'email'"),
            error("contact", "c3", "DEPENDENCY_PENDING", "waiting for company to reach Marketo"),
            error("contact", "c4", "1001", "old", resolved=True),
            error("lead", "l1", "1003", "1003 Invalid data"),
        ]
    )
    contact = groups["contact"]
    assert [(g.code, g.count, g.record_ids) for g in contact] == [
        ("1001", 2, ("c1", "c2")),
        ("DEPENDENCY_PENDING", 1, ("c3",)),
    ]
    assert (
        contact[0].sample_message
        == "1001 Invalid value '[value withheld]'. Required of type 'email'"
    )
    assert contact[0].meaning and "type mismatch" in contact[0].meaning
    assert groups["lead"][0].to_json() == {
        "code": "1003",
        "count": 1,
        "operations": ["create"],
        "meaning": "invalid data",
        "sample_message": "1003 Invalid data",
        "record_ids": ["l1"],
    }


def test_a_failing_entity_is_named_with_its_ids_and_fields() -> None:
    """What breaks the reconciliation is listed by record id and field name."""
    bad = EntityReconciliation(
        "contact", in_dynamics=3, expected=3, found=2, missing=["c9"],
        mismatched={"c1": ["lastName", "title"]},
    )  # fmt: skip
    good = EntityReconciliation("lead", in_dynamics=1, expected=1, found=1)
    result = ReconcileResult("demo", ReconciliationReport([good, bad]), {})
    assert not result.holds
    problems = render_problems([good, bad])
    assert "missing in Marketo, no sync error: c9" in problems
    assert "mismatched c1: lastName, title" in problems
    assert "lead" not in problems
    text = result.render()
    assert text.endswith("RESULT: the reconciliation does NOT hold for: contact.")
    data = result.to_json()
    assert data["holds"] is False
    assert [e["entity"] for e in data["entities"]] == ["lead", "contact"]
    assert data["entities"][1]["mismatched"] == {"c1": ["lastName", "title"]}
    assert data["entities"][1]["missing"] == ["c9"]
