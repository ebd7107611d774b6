"""Instance rows and the copy-rule row in Table Storage.

Instances are few, so they share one partition (``instance``) of the ``Instances`` table; the
copy rule is a row of the ``Config`` table, created with Marketo's defaults the first time it is
needed and never overwritten by the code afterwards, so an operator's edit stands.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables import UpdateMode

from shared.clock import Clock
from shared.errors import ConcurrencyConflict, ConfigurationError
from shared.state import odata
from shared.state.instances import (
    COPY_RULE_ROW,
    INSTANCE_PARTITION,
    RULES_PARTITION,
    CopyRule,
    Instance,
    InstanceStatus,
    from_entity,
    rule_from_entity,
    rule_to_entity,
    to_entity,
    with_status,
)
from shared.state.keys import encode_component
from shared.state.tables import TableAccess, TableKind, replace_if_unchanged, storage_errors


class InstanceStore:
    """Create, read, update instances; read and set the copy rule."""

    def __init__(self, tables: TableAccess, clock: Clock) -> None:
        self._tables = tables
        self._clock = clock

    def get(self, instance_id: str) -> Instance | None:
        """The instance, or ``None``."""
        client = self._tables.client(TableKind.INSTANCES)
        try:
            with storage_errors(
                f"reading instance {instance_id}", expected=(ResourceNotFoundError,)
            ):
                row = client.get_entity(INSTANCE_PARTITION, encode_component(instance_id))
        except ResourceNotFoundError:
            return None
        return from_entity(row)

    def require(self, instance_id: str) -> Instance:
        """The instance.

        Raises:
            ConfigurationError: it does not exist.
        """
        instance = self.get(instance_id)
        if instance is None:
            raise ConfigurationError(f"instance {instance_id!r} does not exist")
        return instance

    def list(self) -> list[Instance]:
        """Every instance, ordered by id."""
        client = self._tables.client(TableKind.INSTANCES)
        query = odata.compare("PartitionKey", "eq", odata.string(INSTANCE_PARTITION))
        with storage_errors("listing instances"):
            return [from_entity(row) for row in client.query_entities(query)]

    def create(self, instance: Instance) -> Instance:
        """Store a new instance.

        Raises:
            ConfigurationError: an instance with that id exists already.
        """
        now = self._clock.now()
        stamped = replace(
            instance,
            created_at=instance.created_at or now,
            updated_at=now,
            status_changed_at=instance.status_changed_at or now,
        )
        client = self._tables.client(TableKind.INSTANCES)
        try:
            with storage_errors(
                f"creating instance {instance.instance_id}", expected=(ResourceExistsError,)
            ):
                metadata = client.create_entity(to_entity(stamped))
        except ResourceExistsError:
            raise ConfigurationError(f"instance {instance.instance_id!r} already exists") from None
        return replace(stamped, etag=metadata.get("etag"))

    def save(self, instance: Instance) -> Instance:
        """Write back an instance read from the store, if nobody changed it meanwhile.

        Raises:
            ConcurrencyConflict: the row changed (or vanished) since it was read.
        """
        if instance.etag is None:
            raise ValueError("save needs an instance read from the store (with its ETag)")
        stamped = replace(instance, updated_at=self._clock.now())
        client = self._tables.client(TableKind.INSTANCES)
        try:
            etag = replace_if_unchanged(
                client, to_entity(stamped), instance.etag, f"saving instance {instance.instance_id}"
            )
        except ConcurrencyConflict:
            raise ConcurrencyConflict(
                f"instance {instance.instance_id} changed since it was read; re-read and retry",
                system="storage",
            ) from None
        return replace(stamped, etag=etag)

    def set_status(self, instance_id: str, status: InstanceStatus, reason: str) -> Instance:
        """Move an instance to ``status`` (read, change, conditional write)."""
        current = self.require(instance_id)
        return self.save(with_status(current, status, reason, self._clock.now()))

    def delete(self, instance_id: str) -> None:
        """Remove the instance row (its sync state in other tables is left alone)."""
        client = self._tables.client(TableKind.INSTANCES)
        with storage_errors(f"deleting instance {instance_id}"):
            client.delete_entity(INSTANCE_PARTITION, encode_component(instance_id))

    # --- the copy rule --------------------------------------------------------------------

    def copy_rule(self) -> CopyRule:
        """The stored copy rule, seeding Marketo's default the first time."""
        client = self._tables.client(TableKind.CONFIG)
        try:
            with storage_errors(
                "reading the instance-copy rule", expected=(ResourceNotFoundError,)
            ):
                return rule_from_entity(client.get_entity(RULES_PARTITION, COPY_RULE_ROW))
        except ResourceNotFoundError:
            pass
        default = CopyRule()
        try:
            with storage_errors("seeding the instance-copy rule", expected=(ResourceExistsError,)):
                client.create_entity(rule_to_entity(default))
        except ResourceExistsError:  # seeded concurrently: use what is stored
            with storage_errors("reading the instance-copy rule"):
                return rule_from_entity(client.get_entity(RULES_PARTITION, COPY_RULE_ROW))
        return default

    def set_copy_rule(self, rule: CopyRule) -> None:
        """Replace the stored copy rule."""
        client = self._tables.client(TableKind.CONFIG)
        entity: dict[str, Any] = rule_to_entity(rule)
        with storage_errors("writing the instance-copy rule"):
            client.upsert_entity(entity, mode=UpdateMode.REPLACE)
