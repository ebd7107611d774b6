"""A stream: one (instance, entity, direction) that the sync advances on its own.

Watermarks and leases are keyed by stream: PartitionKey = the instance id, RowKey = entity and
direction, so everything about one instance is a single-partition query (``dmsync status``).
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.jobs import Direction
from shared.state.keys import InvalidKeyError, encode_component, join_key, split_key


@dataclass(frozen=True, order=True)
class StreamId:
    """Which stream: the integration instance, the entity's logical name, and the direction."""

    instance_id: str
    entity: str
    direction: Direction

    def __post_init__(self) -> None:
        if not self.instance_id or not self.entity:
            raise ValueError("a stream needs a non-empty instance id and entity name")
        # Coerce "d2m"/"m2d" strings from callers and CLI input; unknown values fail loudly.
        object.__setattr__(self, "direction", Direction(self.direction))

    def __str__(self) -> str:
        return f"{self.instance_id}/{self.entity}/{self.direction.value}"

    @property
    def partition_key(self) -> str:
        """The instance id, encoded."""
        return encode_component(self.instance_id)

    @property
    def row_key(self) -> str:
        """Entity and direction, encoded and joined."""
        return join_key(self.entity, self.direction.value)

    @classmethod
    def from_keys(cls, partition_key: str, row_key: str) -> StreamId:
        """The stream a watermark or lease row belongs to.

        Raises:
            InvalidKeyError: if the keys were not written by :class:`StreamId`.
        """
        parts = split_key(row_key)
        if len(parts) != 2:
            raise InvalidKeyError(f"row key {row_key!r} is not an entity/direction key")
        instance_id = split_key(partition_key)
        if len(instance_id) != 1:
            raise InvalidKeyError(f"partition key {partition_key!r} is not an instance key")
        try:
            return cls(instance_id[0], parts[0], Direction(parts[1]))
        except ValueError as exc:
            raise InvalidKeyError(f"row key {row_key!r}: {exc}") from None
