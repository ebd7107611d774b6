"""Instances and the instance-copy rule on Azurite."""

from __future__ import annotations

import pytest

from shared.clock import ManualClock
from shared.errors import ConcurrencyConflict, ConfigurationError
from shared.jobs import Direction
from shared.state.instances import (
    COPY_RULE_ROW,
    MARKETO_COPY_REFUSAL,
    RULES_PARTITION,
    CopyRefusedError,
    CopyRule,
    DynamicsOrganization,
    Instance,
    InstanceStatus,
    MarketoInstance,
)
from shared.state.mappings import IdMapping
from shared.state.store import StateStore
from shared.state.streams import StreamId
from shared.state.sync_errors import FailedRecord
from shared.state.tables import TableKind
from shared.state.watermarks import RunCounts

pytestmark = pytest.mark.integration

CONFIG = {
    "entities": ["contact", "lead"],
    "field_mapping": {"contact": {"emailaddress1": "email", "firstname": "firstName"}},
    "schedule": "0 */5 * * * *",
    "notes": "x" * 40_000,  # a configuration past one property's limit
}


def _source(store: StateStore, *, integrated: bool, instance_id: str = "prod") -> Instance:
    return store.instances.create(
        Instance(
            instance_id=instance_id,
            dynamics=DynamicsOrganization("https://contoso.crm.dynamics.com", "org-1", "env-1"),
            marketo=MarketoInstance("https://123-ABC-456.mktorest.com", "123-ABC-456"),
            config=CONFIG,
            integrated_with_dynamics=integrated,
        )
    )


def _give_it_state(store: StateStore, instance_id: str) -> None:
    stream = StreamId(instance_id, "contact", Direction.DYNAMICS_TO_MARKETO)
    seq = store.watermarks.start_run(stream).sequence
    store.watermarks.advance(stream, sequence=seq, cursor="delta-1", counts=RunCounts(read=1))
    store.mappings.put(IdMapping(instance_id, "contact", "d-1", "lead", "100"))
    store.errors.record(FailedRecord(stream, "update", "1003", "bad", dynamics_id="d-2"))


def test_create_read_list_and_status_changes(store: StateStore, clock: ManualClock) -> None:
    """Instances round-trip (a long config included), list in id order, change status under
    their ETag, and refuse duplicates."""
    created = _source(store, integrated=True)
    _source(store, integrated=False, instance_id="dev")
    assert store.instances.get("prod") == created
    assert [i.instance_id for i in store.instances.list()] == ["dev", "prod"]
    with pytest.raises(ConfigurationError, match="already exists"):
        _source(store, integrated=False)
    clock.advance(60)
    paused = store.instances.set_status("prod", InstanceStatus.SUSPENDED, "sandbox refresh")
    assert (paused.status, paused.status_reason, paused.status_changed_at) == (
        InstanceStatus.SUSPENDED,
        "sandbox refresh",
        clock.now(),
    )
    with pytest.raises(ConcurrencyConflict):
        store.instances.save(created)  # the version read before the status change
    with pytest.raises(ConfigurationError, match="does not exist"):
        store.instances.require("nope")


def test_copying_an_integrated_instance_is_refused(store: StateStore) -> None:
    """Refused with Marketo's words, and nothing is created."""
    _source(store, integrated=True)
    with pytest.raises(CopyRefusedError) as refused:
        store.copy_instance("prod", "prod-copy")
    assert MARKETO_COPY_REFUSAL in str(refused.value)
    assert store.instances.get("prod-copy") is None


def test_the_rule_is_a_row_in_table_storage(store: StateStore) -> None:
    """The rule is seeded as a row; editing the row changes what the copy path does."""
    _source(store, integrated=True)
    assert store.instances.copy_rule() == CopyRule()
    row = store.tables.client(TableKind.CONFIG).get_entity(RULES_PARTITION, COPY_RULE_ROW)
    assert row["refusal_message"] == MARKETO_COPY_REFUSAL
    store.instances.set_copy_rule(CopyRule(refuse_if_source_integrated=False))
    assert store.copy_instance("prod", "prod-copy").copied_from == "prod"


def test_a_copy_takes_the_configuration_and_no_sync_state(store: StateStore) -> None:
    """The target gets the config; no watermarks, mappings or errors; paused, not integrated."""
    source = _source(store, integrated=False)
    _give_it_state(store, "prod")
    target_marketo = MarketoInstance("https://999-XYZ-999.mktorest.com", "999-XYZ-999")
    copy = store.copy_instance("prod", "sandbox", marketo=target_marketo)
    assert store.instances.get("sandbox") == copy
    assert copy.config == source.config
    assert (copy.status, copy.integrated_with_dynamics, copy.marketo) == (
        InstanceStatus.PAUSED,
        False,
        target_marketo,
    )
    assert store.watermarks.list("sandbox") == []
    assert not store.mappings.has_any("sandbox")
    assert store.errors.list("sandbox", include_resolved=True) == []
    assert store.status("sandbox")[0].streams == []
    assert store.mappings.has_any("prod") and store.watermarks.list("prod")  # source untouched


def test_a_target_with_leftover_state_or_an_existing_row_is_refused(store: StateStore) -> None:
    """A copy never lands on top of another instance or its old watermarks and mappings."""
    _source(store, integrated=False)
    _source(store, integrated=False, instance_id="taken")
    with pytest.raises(CopyRefusedError, match="already exists"):
        store.copy_instance("prod", "taken")
    _give_it_state(store, "old")
    with pytest.raises(CopyRefusedError, match="watermarks or ID mappings"):
        store.copy_instance("prod", "old")
    with pytest.raises(CopyRefusedError, match="does not exist"):
        store.copy_instance("missing", "new")
