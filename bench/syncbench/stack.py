"""What the app runs against: a private Azurite, both emulators as subprocesses, seeded data.

* Azurite: :func:`emulators.azurite.run_azurite` (its own Node process, free ports, temp folder).
* Dataverse: ``run_dynamics_emulator(mode="subprocess")``, seeded through its control API with
  ``contacts`` contacts, ``accounts`` accounts (85 % of contacts have a parent account), and the
  users and teams that own them. Default limits (6,000 requests / 5 min, 52 concurrent).
* Marketo: ``run_marketo_emulator(mode="subprocess")`` with its default configuration, i.e. the
  real limits: 100 calls / 20 s, 10 concurrent, 50,000 a day (emulator README).

The app's settings point at them, with ``MARKETO_CALLS_PER_20S=100`` (the governor at the whole
instance rate), the default ``MARKETO_MAX_CONCURRENCY`` (5) and ``SYNC_SCHEDULE`` at its default
(one minute), and ``SYNC_MAPPING_FILE`` = :data:`MAPPING_FILE`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emulators.app_settings import emulator_app_settings
from emulators.azurite import AzuriteInstance, run_azurite
from emulators.dynamics.runner import EmulatorHandle, run_dynamics_emulator
from emulators.marketo.runner import RunningMarketo, run_marketo_emulator

MAPPING_FILE = Path(__file__).with_name("contacts_accounts.toml")
"""systemuser, team, account and contact exactly as in the shipped default mapping."""
DEFAULT_SCHEDULE = "0 */1 * * * *"
SYNCED_TABLES = ("systemuser", "team", "account", "contact")
SYNC_FILTER_COLUMN = "new_synctomkto"
FILTERED_TABLES = ("account", "contact")
"""Tables whose ``new_synctomkto`` decides (the mapping's ``sync_filter = true``)."""


@dataclass(frozen=True)
class SeedPlan:
    """How much data to generate."""

    contacts: int
    accounts: int
    users: int
    teams: int
    seed: int = 7
    bad_data_share: float = 0.0
    """Share of rows with invalid data (e-mails Marketo refuses, ...). 0 by default so that the
    call counts measure the sync path, not retries of rejected records; ``--bad-data-share``
    sets it."""

    @property
    def counts(self) -> dict[str, int]:
        """Rows per table for the emulator's seed endpoint."""
        return {
            "systemuser": self.users,
            "team": self.teams,
            "account": self.accounts,
            "contact": self.contacts,
        }


@dataclass
class Stack:
    """The running services and what was seeded."""

    azurite: AzuriteInstance
    dynamics: EmulatorHandle
    marketo: RunningMarketo
    rows: dict[str, int] = field(default_factory=dict)
    """Rows per synced table in Dataverse after seeding (the app user included)."""
    eligible: dict[str, int] = field(default_factory=dict)
    """Rows per synced table that the sync filter lets through (all users and teams)."""

    def app_settings(self, **extra: str) -> dict[str, str]:
        """The app settings of the host process."""
        return {
            **emulator_app_settings(self.azurite, self.dynamics, self.marketo),
            "SYNC_MAPPING_FILE": str(MAPPING_FILE),
            # The trigger names %SYNC_SCHEDULE%, so it must be set; this is its default value.
            "SYNC_SCHEDULE": DEFAULT_SCHEDULE,
            **extra,
        }


def eligible_rows(table: str, rows: list[dict[str, Any]]) -> int:
    """Rows the sync must bring to Marketo: all, or those whose sync filter is not exactly No."""
    if table not in FILTERED_TABLES:
        return len(rows)
    return sum(1 for row in rows if row.get(SYNC_FILTER_COLUMN) is not False)


@contextmanager
def running_stack(plan: SeedPlan) -> Iterator[Stack]:
    """Start Azurite and both emulators, seed Dataverse, and stop everything afterwards."""
    with ExitStack() as stack:
        azurite = stack.enter_context(run_azurite())
        dynamics = stack.enter_context(run_dynamics_emulator(mode="subprocess", seed=plan.seed))
        marketo = stack.enter_context(run_marketo_emulator(mode="subprocess"))
        dynamics.control.seed(
            counts=plan.counts, seed=plan.seed, bad_data_share=plan.bad_data_share
        )
        running = Stack(azurite, dynamics, marketo)
        for table in SYNCED_TABLES:
            rows = dynamics.control.records(table, limit=10_000_000)
            running.rows[table] = len(rows)
            running.eligible[table] = eligible_rows(table, rows)
        yield running
