"""``dmsync validate [--json]``: the checklist Marketo's own sync calls "Validate Sync".

Reads the app's settings (the same names as in Azure), connects to Dataverse, Marketo and the
state store as the app would, and prints one line per check: ✔, ⚠ (the sync runs, but look), ✘
(with what to do) or · (not checked, because a check before it failed). Exit 0 only when nothing
is ✘; 1 otherwise. ``--json`` prints the same as data. No secret is ever printed: the output is
passed through the log redaction with this process's secret settings registered.

The checks themselves live in :mod:`shared.validation.checklist`; the app runs the same ones at
start.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os

from shared.errors import ConfigurationError
from shared.state.tables import DEFAULT_PREFIX
from shared.telemetry.logs import Redactor
from shared.validation.results import Checklist, failed

SECRET_SETTINGS = (
    "AzureWebJobsStorage",
    "DYNAMICS_CLIENT_SECRET",
    "DYNAMICS_CLIENT_CERTIFICATE",
    "DYNAMICS_CLIENT_CERTIFICATE_PASSWORD",
    "MARKETO_CLIENT_SECRET",
)


_SETTINGS_FIX = (
    "set them as docs/settings.md describes (the same names as the app's settings in Azure)"
)


def configure(parser: argparse.ArgumentParser) -> None:
    """``--json`` and the state tables' prefix."""
    parser.add_argument("--json", action="store_true", help="print JSON instead of lines")
    parser.add_argument(
        "--table-prefix",
        default=DEFAULT_PREFIX,
        help=f"prefix of the state tables (default {DEFAULT_PREFIX})",
    )


def run(args: argparse.Namespace) -> int:
    """Run the checklist and print it."""
    checklist = asyncio.run(_checklist(dict(os.environ), args.table_prefix))
    redactor = Redactor(v for k in SECRET_SETTINGS if (v := os.environ.get(k, "")).strip())
    if args.json:
        text = json.dumps(checklist.to_json(), indent=2, ensure_ascii=False)
    else:
        text = checklist.render()
    print(redactor.redact(text))
    return 0 if checklist.ok else 1


async def _checklist(environ: dict[str, str], table_prefix: str) -> Checklist:
    from shared.dynamics.client import DynamicsClient
    from shared.marketo.client import MarketoClient
    from shared.settings import DynamicsSettings, MarketoSettings, SyncSettings, load
    from shared.state.store import StateStore
    from shared.sync.config import load_config
    from shared.sync.d2m.reader import DataverseChangeReader
    from shared.validation.checklist import ChecklistTargets, run_checklist

    try:
        dynamics_settings = load(DynamicsSettings, environ)
        marketo_settings = load(MarketoSettings, environ)
        sync = load(SyncSettings, environ)
        config = load_config(sync.mapping_file)
        store = StateStore.from_environment(environ, table_prefix=table_prefix)
    except ConfigurationError as exc:
        return Checklist([failed("settings", "app settings", str(exc), _SETTINGS_FIX)])
    ca_bundle = environ.get("REQUESTS_CA_BUNDLE")
    try:
        dynamics = DynamicsClient(dynamics_settings, verify=ca_bundle or True)
    except ConfigurationError as exc:
        return Checklist([failed("settings", "Dataverse sign-in", str(exc), _SETTINGS_FIX)])
    marketo = MarketoClient(marketo_settings)
    try:
        return await run_checklist(
            ChecklistTargets(
                config=config,
                dynamics=dynamics,
                marketo=marketo,
                dynamics_url=dynamics_settings.url,
                marketo_settings=marketo_settings,
                instance_id=sync.instance_id,
                store=store,
                identity=DataverseChangeReader(dynamics),
                ca_bundle=ca_bundle,
            )
        )
    finally:
        await dynamics.aclose()
        await marketo.aclose()
