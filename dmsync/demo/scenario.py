"""The seeded Dynamics organisation: how big, how much of it is filtered out or bad.

Seeding goes through the Dynamics emulator's control API (``POST /_emulator/seed``): users,
teams, connection roles, accounts with primary contacts, contacts, leads, opportunities with
account or contact customers and stakeholder connections (Marketo opportunity roles), and the
custom ``new_project`` table. Shares of rows have ``new_synctomkto`` = No (not synced), no value
(synced: reference A.4) or bad data (invalid e-mail addresses, values at maximum length,
surrounding spaces, non-Latin text), so the sync errors and the filter are part of the story.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dmsync.host.host_config import queue_options, read_host_json
from emulators.dynamics.runner import EmulatorHandle

EMAIL = re.compile(r"^[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}$")
"""What Marketo accepts as an e-mail address (emulator README "Leads": ASCII local@domain.tld)."""


@dataclass(frozen=True)
class Scale:
    """How many rows of each table, and the shares of filtered-out and bad rows."""

    name: str
    counts: Mapping[str, int]
    no_sync_share: float
    null_sync_share: float
    bad_data_share: float
    initial_sync_timeout: float
    """Seconds the initial sync may take before the demo gives up (a multiple of its usual)."""
    changes_timeout: float
    """Seconds the changes usually take at most to arrive in Marketo (timer ticks and jobs);
    :func:`changes_budget` adds the queue's retry delay to it."""


SCALES: dict[str, Scale] = {
    "full": Scale(
        "full",
        {
            "systemuser": 40,
            "team": 8,
            "account": 1500,
            "contact": 4000,
            "lead": 2500,
            "opportunity": 600,
            "new_project": 300,
        },
        no_sync_share=0.08,
        null_sync_share=0.05,
        bad_data_share=0.04,
        initial_sync_timeout=180,
        changes_timeout=60,
    ),
    "small": Scale(
        "small",
        {
            "systemuser": 3,
            "team": 2,
            "account": 10,
            "contact": 30,
            "lead": 12,
            "opportunity": 6,
            "new_project": 4,
        },
        no_sync_share=0.15,
        null_sync_share=0.1,
        bad_data_share=0.1,
        initial_sync_timeout=90,
        changes_timeout=60,
    ),
}


def changes_budget(scale: Scale, host_json: Path) -> float:
    """Seconds the demo waits for its changes: the scale's usual time plus one queue retry.

    A job that fails once (a transient Marketo or storage error) comes back only after the
    queue's ``visibilityTimeout`` (two minutes in the shipped host.json), so a budget shorter
    than that would fail the demo on one transient error the sync itself recovers from.
    """
    options = queue_options(read_host_json(host_json), os.environ)
    return scale.changes_timeout + options.visibility_timeout


FILTERED_TABLES = ("account", "contact", "lead", "opportunity", "new_project")
"""Tables with the ``new_synctomkto`` column (emulator README "Tables")."""


@dataclass(frozen=True)
class TableSummary:
    """What was seeded into one table."""

    table: str
    rows: int
    sync_no: int
    sync_unset: int
    bad_email: int


def seed(dynamics: EmulatorHandle, scale: Scale, seed_value: int) -> dict[str, int]:
    """Seed the organisation; returns the row count of every table."""
    return dynamics.control.seed(
        counts=dict(scale.counts),
        seed=seed_value,
        no_sync_share=scale.no_sync_share,
        null_sync_share=scale.null_sync_share,
        bad_data_share=scale.bad_data_share,
    )


def summarize(table: str, rows: Sequence[Mapping[str, Any]]) -> TableSummary:
    """Counts of filtered-out, unset and invalid-e-mail rows in ``rows``."""
    return TableSummary(
        table=table,
        rows=len(rows),
        sync_no=sum(1 for r in rows if r.get("new_synctomkto") is False),
        sync_unset=sum(1 for r in rows if "new_synctomkto" in r and r["new_synctomkto"] is None),
        bad_email=sum(
            1
            for r in rows
            if r.get("emailaddress1") is not None and not EMAIL.match(str(r["emailaddress1"]))
        ),
    )


def render_summary(rows_per_table: Mapping[str, int], summaries: Sequence[TableSummary]) -> str:
    """Lines describing the seeded organisation."""
    by_table = {s.table: s for s in summaries}
    lines = []
    for table in ("systemuser", "team", "connectionrole", *FILTERED_TABLES, "connection"):
        count = rows_per_table.get(table, 0)
        if not count:
            continue
        line = f"  {table:<15}{count:>6} rows"
        summary = by_table.get(table)
        if summary is not None:
            notes = [f"{summary.sync_no} with new_synctomkto = No (stay out of Marketo)"]
            if summary.sync_unset:
                notes.append(f"{summary.sync_unset} with no value (synced)")
            if summary.bad_email:
                notes.append(f"{summary.bad_email} with an invalid e-mail address")
            line += ": " + ", ".join(notes)
        elif table == "connection":
            line += " (each stakeholder link is stored twice, with its reciprocal)"
        lines.append(line)
    return "\n".join(lines)
