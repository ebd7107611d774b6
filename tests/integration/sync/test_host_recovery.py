"""A host killed with SIGKILL mid-run: the new host moves the stream on without waiting for the
dead job's 10-minute message lease or any stale-run timeout, and nothing is lost or doubled.

The real ``dmsync host`` runs ``function_app.py`` against its own Azurite and both emulators
(subprocesses), as in ``make bench``; the scenario is :mod:`bench.syncbench.recovery`. A fast
timer and ``SYNC_RECOVERY_SECONDS=10`` keep it short; the recovery time at the real defaults is
a ``make bench`` figure, not asserted here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.syncbench.recovery import kill_and_recover
from bench.syncbench.stack import SeedPlan, running_stack

pytestmark = pytest.mark.integration


def test_a_killed_host_is_replaced_and_the_run_goes_on(tmp_path: Path) -> None:
    plan = SeedPlan(contacts=2500, accounts=100, users=4, teams=1)
    with running_stack(plan) as stack:
        result = kill_and_recover(
            stack,
            tmp_path,
            tmp_path / "logs",
            timeout=300,
            write_latency_ms=(400.0, 600.0),
            SYNC_SCHEDULE="*/5 * * * * *",
            SYNC_RECOVERY_SECONDS="10",
        )
    assert 0 < result.persons_at_kill < stack.eligible["contact"]  # killed part-way
    assert result.contacts_in_marketo == stack.eligible["contact"]  # nothing lost
    assert result.duplicate_keys == 0  # nothing doubled
    # The next page was committed within kill_and_recover's 300 s bound, i.e. long before the
    # dead job's message could reappear (the host's 10-minute receive lease): only the nudge
    # of the quiet run can have moved it. (Seconds measured: a `make bench` figure.)
    print(f"recovery: {result}")
