"""``dmsync reconcile``: compare Dynamics with Marketo through their APIs, and say if it holds.

Loads the same app settings the Functions app uses (``AzureWebJobsStorage``, ``DYNAMICS_*``,
``MARKETO_*``, ``SYNC_*``), builds both API clients and the state store as the app does, runs
:class:`shared.sync.reconcile.Reconciler` and prints its table, then the open sync errors of each
entity grouped by code with a sample message (record ids, never field values or e-mails).

Exit status: 0 when the reconciliation holds, 1 when it does not, 2 for a settings problem (the
message names the setting) or an instance that has never synced. It reads, never writes; its
Marketo calls go through the same governor and share (``MARKETO_CALLS_PER_20S``) as the app's.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Mapping

from dmsync.reconcile_report import ReconcileResult, group_errors
from dmsync.state_cli import add_store_options, print_json
from shared.dynamics.client import DynamicsClient
from shared.errors import ConfigurationError
from shared.marketo.client import MarketoClient
from shared.settings import DynamicsSettings, MarketoSettings, StorageSettings, SyncSettings, load
from shared.state.store import StateStore
from shared.state.tables import DEFAULT_PREFIX
from shared.storage import StorageConnection
from shared.sync.config import load_config
from shared.sync.reconcile import Reconciler


def configure(parser: argparse.ArgumentParser) -> None:
    """``--instance``, ``--json`` and ``--table-prefix``."""
    add_store_options(parser)
    parser.add_argument(
        "--instance",
        metavar="ID",
        default=None,
        help="the integration instance (default: SYNC_INSTANCE_ID, else 'default')",
    )


async def reconcile(
    environ: Mapping[str, str] | None = None,
    *,
    instance_id: str | None = None,
    table_prefix: str = DEFAULT_PREFIX,
) -> ReconcileResult:
    """Run a reconciliation with the app settings in ``environ`` (default: the environment).

    Raises:
        ConfigurationError: a setting is missing or malformed (named), or the instance has no
            sync state in this storage.
    """
    env = dict(os.environ if environ is None else environ)
    storage = load(StorageSettings, env)
    dynamics_settings = load(DynamicsSettings, env)
    marketo_settings = load(MarketoSettings, env)
    sync = load(SyncSettings, env)
    config = load_config(sync.mapping_file)
    instance = instance_id or sync.instance_id
    store = StateStore.from_connection(
        StorageConnection.from_settings(storage),
        table_prefix=table_prefix,
        error_retention_days=sync.error_retention_days,
    )
    if await asyncio.to_thread(store.instances.get, instance) is None:
        raise ConfigurationError(
            f"instance {instance!r} has no sync state in this storage (table prefix "
            f"{table_prefix!r}): has the sync run yet? Choose another with --instance or "
            "SYNC_INSTANCE_ID"
        )
    # As shared.sync.service: REQUESTS_CA_BUNDLE (a private CA, e.g. the local emulator's) is
    # trusted by azure-identity's token requests and by the Web API calls alike.
    ca_bundle = env.get("REQUESTS_CA_BUNDLE")
    async with (
        DynamicsClient(dynamics_settings, verify=ca_bundle or True) as dynamics,
        MarketoClient(marketo_settings) as marketo,
    ):
        report = await Reconciler(config, dynamics, marketo, store, instance).run()
    errors = await asyncio.to_thread(store.errors.list, instance)
    return ReconcileResult(instance, report, group_errors(errors))


def run(args: argparse.Namespace) -> int:
    """Reconcile, print, and exit 0 only if it holds."""
    result = asyncio.run(reconcile(instance_id=args.instance, table_prefix=args.table_prefix))
    if args.json:
        print_json(result.to_json())
    else:
        print(result.render())
    return 0 if result.holds else 1
