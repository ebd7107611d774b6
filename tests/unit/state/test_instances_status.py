"""The instance-copy rule as a decision, copies, row conversion, and the status report."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.jobs import Direction
from shared.state.instances import (
    MARKETO_COPY_REFUSAL,
    CopyRule,
    DynamicsOrganization,
    Instance,
    InstanceStatus,
    MarketoInstance,
    build_copy,
    decide_copy,
    from_entity,
    rule_from_entity,
    rule_to_entity,
    to_entity,
    with_status,
)
from shared.state.leases import new_lease
from shared.state.status import build_report
from shared.state.streams import StreamId
from shared.state.watermarks import Phase, RunCounts, Watermark

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
CONFIG = {
    "entities": ["contact", "lead", "account"],
    "field_mapping": {"contact": {"emailaddress1": "email"}},
    "schedule": "0 */5 * * * *",
}


def _instance(instance_id: str = "prod", *, integrated: bool) -> Instance:
    return Instance(
        instance_id=instance_id,
        dynamics=DynamicsOrganization("https://contoso.crm.dynamics.com", "org-guid", "env-guid"),
        marketo=MarketoInstance("https://123-ABC-456.mktorest.com", "123-ABC-456"),
        config=CONFIG,
        integrated_with_dynamics=integrated,
    )


def _decide(source: Instance | None, **flags: bool) -> tuple[bool, str]:
    decision = decide_copy(
        source,
        "prod",
        "copy",
        CopyRule(),
        target_exists=flags.get("target_exists", False),
        target_has_state=flags.get("target_has_state", False),
    )
    return decision.allowed, decision.reason


def test_copying_an_integrated_instance_is_refused_in_marketos_words() -> None:
    """The default rule refuses with Marketo's own sentence."""
    assert _decide(_instance(integrated=True)) == (False, MARKETO_COPY_REFUSAL)
    assert MARKETO_COPY_REFUSAL == (
        "Instance copy is not supported if the source instance is integrated with "
        "Microsoft Dynamics"
    )


def test_a_non_integrated_instance_may_be_copied() -> None:
    """Without the integration the copy goes ahead, unless the target is taken."""
    assert _decide(_instance(integrated=False)) == (True, "")
    assert _decide(_instance(integrated=False), target_exists=True)[0] is False
    assert (
        "watermarks or ID mappings"
        in _decide(_instance(integrated=False), target_has_state=True)[1]
    )
    assert "does not exist" in _decide(None)[1]


def test_the_rule_comes_from_its_row() -> None:
    """A rule row that allows integrated copies is obeyed (the rule is data, not code)."""
    lenient = rule_from_entity({"refuse_if_source_integrated": False})
    decision = decide_copy(
        _instance(integrated=True),
        "prod",
        "copy",
        lenient,
        target_exists=False,
        target_has_state=False,
    )
    assert decision.allowed
    assert rule_from_entity(rule_to_entity(CopyRule())) == CopyRule()
    assert rule_from_entity({}) == CopyRule()


def test_a_copy_takes_the_configuration_only() -> None:
    """Config is deep-copied; Dynamics is not connected; it starts paused and not integrated."""
    source = _instance(integrated=False)
    target_marketo = MarketoInstance("https://999-XYZ-999.mktorest.com", "999-XYZ-999")
    copy = build_copy(source, "sandbox", CopyRule(), T0, target_marketo)
    assert copy.config == CONFIG and copy.config is not source.config
    copy.config["entities"].append("opportunity")
    assert source.config["entities"] == ["contact", "lead", "account"]
    assert copy.dynamics == DynamicsOrganization()
    assert copy.marketo == target_marketo
    assert (copy.integrated_with_dynamics, copy.status, copy.copied_from) == (
        False,
        InstanceStatus.PAUSED,
        "prod",
    )


def test_instance_row_round_trip_and_status_change() -> None:
    """Every field survives the row form; a status change records reason and time."""
    instance = with_status(
        _instance(integrated=True), InstanceStatus.SUSPENDED, "sandbox refresh detected", T0
    )
    assert from_entity(to_entity(instance)) == instance
    assert instance.status_changed_at == T0
    with pytest.raises(TypeError):
        Instance("x", config={"bad": object()})


def test_status_report_joins_watermarks_leases_and_errors() -> None:
    """Streams come from any source; expired leases show no holder; progress and age add up."""
    contact = StreamId("prod", "contact", Direction.DYNAMICS_TO_MARKETO)
    lead = StreamId("prod", "lead", Direction.MARKETO_TO_DYNAMICS)
    account = StreamId("prod", "account", Direction.DYNAMICS_TO_MARKETO)
    watermark = Watermark(
        stream=contact,
        phase=Phase.INITIAL,
        counts=RunCounts(read=400, written=390, skipped=5, failed=5),
        total_expected=1000,
        sequence=3,
        last_success_at=T0 - timedelta(minutes=2),
    )
    leases = [
        new_lease(contact, "worker-1", timedelta(minutes=5), T0 - timedelta(minutes=1), "a"),
        new_lease(lead, "dead-worker", timedelta(minutes=5), T0 - timedelta(minutes=10), "b"),
    ]
    report = build_report(
        "prod", _instance(integrated=True), [watermark], leases, {account: 2, contact: 5}, T0
    )
    by_entity = {s.stream.entity: s for s in report.streams}
    assert set(by_entity) == {"contact", "account"}  # the lead stream had only a dead lease
    row = by_entity["contact"]
    assert (row.progress_done, row.progress_total, row.watermark_age_seconds) == (400, 1000, 120)
    assert (row.lease_holder, row.open_errors) == ("worker-1", 5)
    assert by_entity["account"].phase is None and by_entity["account"].open_errors == 2
    payload = report.to_json()
    assert payload["status"] == "active" and payload["streams"][1]["progress"] == {
        "done": 400,
        "total": 1000,
    }
