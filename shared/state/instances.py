"""Integration instances and the instance-copy rule. Pure part.

An *instance* is one integration: a Dynamics organisation (environment URL, organization id,
environment id) paired with a Marketo instance (REST base URL, Munchkin id), its configuration
(entities, field mapping, schedule: opaque JSON here), its status and whether it is integrated
with Dynamics.

The instance-copy rule lives in a table row (``Config``: ``rules`` / ``instance-copy``), seeded
with Marketo's own rule: copying an instance whose source is integrated with Microsoft Dynamics
is refused. A copy takes the configuration only, never watermarks, ID mappings, leases or sync
errors (those are keyed by instance id in their own tables and are simply not copied), and it
starts paused and not integrated, so nothing syncs until someone connects it.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from shared.errors import FatalError
from shared.state.keys import decode_component, encode_component
from shared.state.properties import (
    read_bool,
    read_datetime,
    read_long_text,
    read_str,
    truncate,
    utc,
    write_long_text,
)

INSTANCE_PARTITION = "instance"
RULES_PARTITION = "rules"
COPY_RULE_ROW = "instance-copy"
MAX_REASON_CHARS = 1_000
SCHEMA_VERSION = 1

MARKETO_COPY_REFUSAL = (
    "Instance copy is not supported if the source instance is integrated with Microsoft Dynamics"
)
"""Marketo's own words for the rule (the default refusal message)."""


class InstanceStatus(StrEnum):
    """Whether the sync runs for an instance."""

    ACTIVE = "active"
    PAUSED = "paused"
    """Stopped by an operator (or a fresh copy waiting to be connected)."""
    SUSPENDED = "suspended"
    """Stopped by the sync itself, e.g. after detecting a Dynamics sandbox refresh."""


class CopyRefusedError(FatalError):
    """An instance copy that the copy rule (or the target's state) does not allow."""


@dataclass(frozen=True)
class DynamicsOrganization:
    """The Dataverse side of an instance."""

    url: str | None = None
    organization_id: str | None = None
    environment_id: str | None = None


@dataclass(frozen=True)
class MarketoInstance:
    """The Marketo side of an instance."""

    base_url: str | None = None
    munchkin_id: str | None = None


@dataclass(frozen=True)
class Instance:
    """One integration instance."""

    instance_id: str
    dynamics: DynamicsOrganization = field(default_factory=DynamicsOrganization)
    marketo: MarketoInstance = field(default_factory=MarketoInstance)
    config: dict[str, Any] = field(default_factory=dict)
    """Entities, field mapping, schedule: opaque JSON for now."""
    integrated_with_dynamics: bool = False
    status: InstanceStatus = InstanceStatus.ACTIVE
    status_reason: str = ""
    status_changed_at: datetime | None = None
    copied_from: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    etag: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not self.instance_id or self.instance_id != self.instance_id.strip():
            raise ValueError("an instance id must be non-empty without surrounding spaces")
        json.dumps(self.config)  # opaque, but must be JSON: fail here, not at write time


def with_status(instance: Instance, status: InstanceStatus, reason: str, now: datetime) -> Instance:
    """``instance`` moved to ``status`` for ``reason`` at ``now``."""
    return replace(
        instance,
        status=status,
        status_reason=truncate(reason, MAX_REASON_CHARS),
        status_changed_at=now,
        updated_at=now,
    )


# --- the copy rule ----------------------------------------------------------------------------


@dataclass(frozen=True)
class CopyRule:
    """What the copy path consults (stored as a row, editable by operators)."""

    refuse_if_source_integrated: bool = True
    refusal_message: str = MARKETO_COPY_REFUSAL
    copy_status: InstanceStatus = InstanceStatus.PAUSED
    """The status a fresh copy starts in."""


@dataclass(frozen=True)
class CopyDecision:
    """Whether a copy may go ahead, and why not."""

    allowed: bool
    reason: str = ""


def decide_copy(
    source: Instance | None,
    source_id: str,
    target_id: str,
    rule: CopyRule,
    *,
    target_exists: bool,
    target_has_state: bool,
) -> CopyDecision:
    """Apply the copy rule and the basic preconditions, first failure wins."""
    if source is None:
        return CopyDecision(False, f"source instance {source_id!r} does not exist")
    if source_id == target_id:
        return CopyDecision(False, "source and target are the same instance")
    if rule.refuse_if_source_integrated and source.integrated_with_dynamics:
        return CopyDecision(False, rule.refusal_message)
    if target_exists:
        return CopyDecision(False, f"target instance {target_id!r} already exists")
    if target_has_state:
        return CopyDecision(
            False,
            f"target instance id {target_id!r} still has watermarks or ID mappings from an "
            "earlier instance; remove them first",
        )
    return CopyDecision(True)


def build_copy(
    source: Instance,
    target_id: str,
    rule: CopyRule,
    now: datetime,
    marketo: MarketoInstance | None = None,
) -> Instance:
    """The new instance: the source's configuration, no Dynamics connection, not integrated,
    in the rule's starting status."""
    return Instance(
        instance_id=target_id,
        dynamics=DynamicsOrganization(),
        marketo=marketo or MarketoInstance(),
        config=copy.deepcopy(source.config),
        integrated_with_dynamics=False,
        status=rule.copy_status,
        status_reason=f"copied from {source.instance_id}; connect it, then resume",
        status_changed_at=now,
        copied_from=source.instance_id,
        created_at=now,
        updated_at=now,
    )


# --- row conversion ---------------------------------------------------------------------------


def to_entity(instance: Instance) -> dict[str, Any]:
    """The table row for ``instance`` (the configuration split over parts when long)."""
    entity: dict[str, Any] = {
        "PartitionKey": INSTANCE_PARTITION,
        "RowKey": encode_component(instance.instance_id),
        "schema": SCHEMA_VERSION,
        "integrated_with_dynamics": instance.integrated_with_dynamics,
        "status": instance.status.value,
        "status_reason": truncate(instance.status_reason, MAX_REASON_CHARS),
    }
    entity.update(write_long_text("config", json.dumps(instance.config, sort_keys=True)))
    optional = {
        "dynamics_url": instance.dynamics.url,
        "dynamics_organization_id": instance.dynamics.organization_id,
        "dynamics_environment_id": instance.dynamics.environment_id,
        "marketo_base_url": instance.marketo.base_url,
        "marketo_munchkin_id": instance.marketo.munchkin_id,
        "copied_from": instance.copied_from,
    }
    entity.update({k: v for k, v in optional.items() if v is not None})
    for name in ("status_changed_at", "created_at", "updated_at"):
        value = getattr(instance, name)
        if value is not None:
            entity[name] = utc(value)
    return entity


def from_entity(entity: Any) -> Instance:
    """The instance stored in ``entity``."""
    metadata = getattr(entity, "metadata", None) or {}
    config_text = read_long_text(entity, "config")
    return Instance(
        instance_id=decode_component(entity["RowKey"]),
        dynamics=DynamicsOrganization(
            url=read_str(entity, "dynamics_url"),
            organization_id=read_str(entity, "dynamics_organization_id"),
            environment_id=read_str(entity, "dynamics_environment_id"),
        ),
        marketo=MarketoInstance(
            base_url=read_str(entity, "marketo_base_url"),
            munchkin_id=read_str(entity, "marketo_munchkin_id"),
        ),
        config=json.loads(config_text) if config_text else {},
        integrated_with_dynamics=read_bool(entity, "integrated_with_dynamics"),
        status=InstanceStatus(read_str(entity, "status") or InstanceStatus.ACTIVE.value),
        status_reason=read_str(entity, "status_reason") or "",
        status_changed_at=read_datetime(entity, "status_changed_at"),
        copied_from=read_str(entity, "copied_from"),
        created_at=read_datetime(entity, "created_at"),
        updated_at=read_datetime(entity, "updated_at"),
        etag=metadata.get("etag"),
    )


def rule_to_entity(rule: CopyRule) -> dict[str, Any]:
    """The copy rule's row."""
    return {
        "PartitionKey": RULES_PARTITION,
        "RowKey": COPY_RULE_ROW,
        "refuse_if_source_integrated": rule.refuse_if_source_integrated,
        "refusal_message": rule.refusal_message,
        "copy_status": rule.copy_status.value,
    }


def rule_from_entity(entity: Any) -> CopyRule:
    """The copy rule stored in ``entity`` (missing properties take Marketo's defaults)."""
    default = CopyRule()
    return CopyRule(
        refuse_if_source_integrated=read_bool(
            entity, "refuse_if_source_integrated", default.refuse_if_source_integrated
        ),
        refusal_message=read_str(entity, "refusal_message") or default.refusal_message,
        copy_status=InstanceStatus(read_str(entity, "copy_status") or default.copy_status.value),
    )
