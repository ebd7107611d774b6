"""``dmsync reconcile`` against a synced instance: exit status and JSON shape."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from emulators.azurite import AzuriteInstance
from emulators.dynamics.runner import EmulatorHandle
from emulators.marketo.runner import RunningMarketo
from tests.integration.sync.harness import SyncHarness, sync_environment, sync_harness

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[3]
COUNTS = {"systemuser": 2, "team": 1, "account": 4, "contact": 12, "lead": 5, "opportunity": 3,
          "new_project": 2}  # fmt: skip
ENTITY_KEYS = {
    "entity", "holds", "in_dynamics", "expected_in_marketo", "found_in_marketo", "missing",
    "mismatched", "duplicates", "deleted_in_dynamics", "deleted_unmarked",
    "explained_by_sync_error", "pending", "errors",
}  # fmt: skip


def reconcile(
    env: dict[str, str], sync: SyncHarness, *extra: str
) -> subprocess.CompletedProcess[str]:
    """Run the command as a user would, on the harness's tables."""
    prefix = sync.runtime.store.tables.names.prefix
    return subprocess.run(
        [sys.executable, "-m", "dmsync.cli", "reconcile", "--table-prefix", prefix, *extra],
        cwd=REPO_ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_reconcile_exit_status_and_json(
    azurite: AzuriteInstance, dyn: EmulatorHandle, mkto: RunningMarketo
) -> None:
    """0 and every entity when it holds; 1 naming record and field (not value) when a Marketo
    person was changed behind the sync's back; 2 for an instance that never synced."""
    dyn.control.seed(counts=COUNTS, seed=43, no_sync_share=0.2, bad_data_share=0.3)
    env = sync_environment(azurite, dyn, mkto)
    async with sync_harness(azurite, dyn, mkto) as sync:
        await sync.sync_until_caught_up()
        instance = ["--instance", sync.instance_id]

        held = reconcile(env, sync, "--json", *instance)
        assert held.returncode == 0, held.stderr
        data = json.loads(held.stdout)
        assert data["instance"] == sync.instance_id and data["holds"] is True
        assert [e["entity"] for e in data["entities"]] == list(sync.runtime.runner.config.order)
        assert all(set(e) == ENTITY_KEYS for e in data["entities"])
        contact = next(e for e in data["entities"] if e["entity"] == "contact")
        assert contact["in_dynamics"] == 12
        assert (
            contact["found_in_marketo"] + len(contact["explained_by_sync_error"])
            == (contact["expected_in_marketo"])
        )
        failed = {e.dynamics_id for e in sync.open_errors() if e.stream.entity == "contact"}
        assert failed, "the seed should give some contact an invalid e-mail address"
        listed = {i for g in contact["errors"] for i in g["record_ids"]}
        assert listed == failed
        assert all(
            set(g) >= {"code", "count", "sample_message", "record_ids"} for g in contact["errors"]
        )

        mapping = next(
            m for m in sync.runtime.store.mappings.list_entity(sync.instance_id, "contact")
            if m.dynamics_id not in failed
        )  # fmt: skip
        mkto.control.change_lead(int(mapping.marketo_id), {"lastName": "Changed In Marketo"})
        broken = reconcile(env, sync, *instance)
        assert broken.returncode == 1
        assert f"mismatched {mapping.dynamics_id}: lastName" in broken.stdout
        assert "Changed In Marketo" not in broken.stdout
        assert "does NOT hold for: contact" in broken.stdout

        unknown = reconcile(env, sync, "--instance", "never-synced")
        assert unknown.returncode == 2
        assert "never-synced" in unknown.stderr and "has no sync state" in unknown.stderr
