"""The ID mapping tables' layout row: bucket count and index layout, checked once per store.

The row (``Config``, ``layout``/``id-mappings``) is created by the first store to use fresh
tables. It records the bucket count (a store configured with another refuses to run: rows
would be looked for in the wrong bucket) and ``index_layout``: absent on tables created by the
first layout, whose Marketo-id index must be backfilled (:mod:`shared.state.marketo_index`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableClient

from shared.errors import ConfigurationError
from shared.state.mappings import MappingLayout
from shared.state.tables import storage_errors

LAYOUT_PARTITION = "layout"
LAYOUT_ROW = "id-mappings"
INDEX_LAYOUT = 2
"""``index_layout`` of tables created with the Marketo-id index."""


class LayoutGuard:
    """Checks the layout row once (thread-safe), then remembers what it said."""

    def __init__(
        self,
        config_client: Callable[[], TableClient],
        layout: MappingLayout,
        on_checked: Callable[[bool], None],
    ) -> None:
        """``on_checked(first_layout)`` is told whether the tables predate the index."""
        self._config_client = config_client
        self._layout = layout
        self._on_checked = on_checked
        self._checked = False
        self._lock = threading.Lock()

    def check(self) -> None:
        """Raise ``ConfigurationError`` if the tables were written with another bucket count."""
        if not self._checked:
            with self._lock:
                if not self._checked:  # another thread may have done it while we waited
                    self._verify()

    def _verify(self) -> None:
        client = self._config_client()
        row: dict[str, Any] = {
            "PartitionKey": LAYOUT_PARTITION,
            "RowKey": LAYOUT_ROW,
            "buckets": self._layout.buckets,
            "index_layout": INDEX_LAYOUT,
        }
        with storage_errors(
            "checking the ID mapping layout",
            expected=(ResourceExistsError, ResourceNotFoundError),
        ):
            stored: Mapping[str, Any]
            try:
                stored = client.get_entity(LAYOUT_PARTITION, LAYOUT_ROW)
            except ResourceNotFoundError:
                try:
                    client.create_entity(row)
                    stored = row
                except ResourceExistsError:  # another process recorded it first
                    stored = client.get_entity(LAYOUT_PARTITION, LAYOUT_ROW)
        buckets = int(stored["buckets"])
        if buckets != self._layout.buckets:
            raise ConfigurationError(
                f"the ID mapping tables were written with {buckets} buckets, but this store "
                f"is configured with {self._layout.buckets}; use {buckets} (changing it needs "
                "the mappings rewritten)"
            )
        self._on_checked(int(stored.get("index_layout") or 1) < INDEX_LAYOUT)
        self._checked = True
