"""The Dynamics side of the checklist: reachable, signed in, and each mapped table usable.

Each check is one call (or none) and turns what the Web API answers into a :class:`CheckResult`
with what to do. The words a failure carries come from our own error types, which never hold a
secret (azure-identity's failures are reduced to their type and Entra's codes).
"""

from __future__ import annotations

import ssl

import httpx

from shared.dynamics.client import DynamicsClient
from shared.dynamics.models import TableDefinition
from shared.errors import DmsyncError
from shared.sync.config import SYNC_FILTER_COLUMN, EntitySpec, SyncConfig
from shared.sync.d2m.reader import table_ref
from shared.sync.schema_check import dynamics_problems
from shared.validation.results import CheckResult, failed, passed, warned

REACHABLE_TIMEOUT = httpx.Timeout(10.0)
"""The reachability probe's bound: a URL that does not answer in 10 s is as good as down."""

CREDENTIAL_SETTINGS = (
    "DYNAMICS_TENANT_ID, DYNAMICS_CLIENT_ID and DYNAMICS_CLIENT_SECRET, or the certificate "
    "(DYNAMICS_CLIENT_CERTIFICATE_PATH or DYNAMICS_CLIENT_CERTIFICATE: the one whose public part "
    "is uploaded to the app registration)"
)


async def url_reachable(url: str, ca_bundle: str | None) -> CheckResult:
    """The environment answers HTTP at all (any status: 401 without a token is the norm)."""
    subject = f"Dataverse {url}"
    verify: ssl.SSLContext | bool = (
        ssl.create_default_context(cafile=ca_bundle) if ca_bundle else True
    )
    try:
        async with httpx.AsyncClient(verify=verify, timeout=REACHABLE_TIMEOUT) as http:
            answer = await http.get(f"{url}/api/data/v9.2/")
    except httpx.HTTPError as exc:
        return failed(
            "dynamics.reachable",
            subject,
            f"not reachable ({type(exc).__name__})",
            "check DYNAMICS_URL (the environment URL, e.g. https://contoso.crm.dynamics.com) "
            "and that this network can reach it",
        )
    return passed("dynamics.reachable", subject, f"reachable (HTTP {answer.status_code})")


async def token_obtained(dynamics: DynamicsClient) -> CheckResult:
    """Entra gives the app registration (or managed identity) a token for the environment."""
    subject = "Dataverse sign-in"
    try:
        await dynamics.tokens.token()
    except DmsyncError as exc:
        return failed(
            "dynamics.token",
            subject,
            f"no token ({exc})",
            f"check {CREDENTIAL_SETTINGS} (or, without a secret, that the app's managed "
            "identity is the one DYNAMICS_CLIENT_ID names)",
        )
    return passed("dynamics.token", subject, "token obtained")


async def application_user(dynamics: DynamicsClient) -> CheckResult:
    """The token's identity is an application user of the environment (``WhoAmI``)."""
    subject = "Dataverse application user"
    try:
        who = await dynamics.whoami()
    except DmsyncError as exc:
        return failed(
            "dynamics.application_user",
            subject,
            f"WhoAmI refused ({exc})",
            "add the app registration as an application user of the environment "
            "(Power Platform admin center → Environment → Settings → Users → App users) "
            "and give it a security role",
        )
    return passed("dynamics.application_user", subject, f"user {who.user_id}")


async def definitions(
    config: SyncConfig, dynamics: DynamicsClient
) -> dict[str, TableDefinition] | DmsyncError:
    """Every mapped table's definition in one request, or why they cannot be read."""
    try:
        return await dynamics.table_definitions([config.entity[n].table for n in config.order])
    except DmsyncError as exc:
        return exc


async def table_checks(
    name: str,
    spec: EntitySpec,
    dynamics: DynamicsClient,
    found: dict[str, TableDefinition] | DmsyncError,
    *,
    read_access: bool = True,
) -> tuple[list[CheckResult], bool]:
    """Definition, change tracking, filter column, mapped columns and (with ``read_access``)
    read access of one table, from the definitions :func:`definitions` read.

    Returns the lines and whether the table lacks the sync-filter column (its records all sync).
    """
    subject = f"Dynamics table {spec.table}" + (f" (entity {name})" if name != spec.table else "")
    definition = None if isinstance(found, DmsyncError) else found.get(spec.table)
    if definition is None:
        reason = (
            f"cannot be read ({found})"
            if isinstance(found, DmsyncError)
            else "does not exist (no table with that logical name)"
        )
        return [
            failed(
                "dynamics.table",
                subject,
                f"entity {name!r}: Dynamics table {spec.table!r} {reason}",
                "check the table's logical name in the mapping, and that the application "
                "user's security role may read table definitions",
            )
        ], False
    results = [_entity_set(name, spec, subject, definition)]
    results.append(_change_tracking(name, spec, subject, definition))
    attributes = set(definition.attributes)
    unfiltered = spec.sync_filter and SYNC_FILTER_COLUMN not in attributes
    if unfiltered:
        results.append(
            warned(
                "dynamics.sync_filter",
                subject,
                f"no {SYNC_FILTER_COLUMN} column: every record of {name} syncs",
                f"add the Yes/No column {SYNC_FILTER_COLUMN} to {spec.table} if some records "
                "should not reach Marketo",
            )
        )
        spec = spec.model_copy(update={"sync_filter": False})
    problems = dynamics_problems(name, spec, attributes)
    results.extend(
        failed(
            "dynamics.column",
            subject,
            problem,
            "fix the column's logical name in the mapping file, or create the column",
        )
        for problem in problems
    )
    if not problems:
        columns = len(spec.dynamics_columns())
        results.append(passed("dynamics.column", subject, f"all {columns} mapped columns exist"))
    if read_access:
        results.append(await _read_access(name, spec, subject, dynamics))
    if spec.two_way:
        results.append(
            warned(
                "dynamics.write_access",
                subject,
                "write access is not checked (it cannot be tested without writing a record)",
                f"make sure the application user's security role grants Write on {spec.table}; "
                "a refusal shows up as sync errors of code 403",
            )
        )
    return results, unfiltered


def _entity_set(
    name: str, spec: EntitySpec, subject: str, definition: TableDefinition
) -> CheckResult:
    if definition.table.entity_set != spec.entity_set:
        return failed(
            "dynamics.entity_set",
            subject,
            f"entity {name!r}: table {spec.table!r} has entity set "
            f"{definition.table.entity_set!r}, not {spec.entity_set!r}",
            f"set entity_set = {definition.table.entity_set!r} in the mapping",
        )
    return passed("dynamics.entity_set", subject, f"entity set {spec.entity_set}")


def _change_tracking(
    name: str, spec: EntitySpec, subject: str, definition: TableDefinition
) -> CheckResult:
    if definition.change_tracking_enabled is False:
        return failed(
            "dynamics.change_tracking",
            subject,
            f"entity {name!r}: change tracking is not enabled on Dynamics table {spec.table!r}",
            f'turn on "Track changes" for {spec.table} (Power Apps → Tables → {spec.table} → '
            "Properties → Advanced options)",
        )
    return passed("dynamics.change_tracking", subject, "change tracking on")


async def _read_access(
    name: str, spec: EntitySpec, subject: str, dynamics: DynamicsClient
) -> CheckResult:
    try:
        await dynamics.read_page(
            table_ref(spec), [spec.primary_key], track_changes=False, page_size=1
        )
    except DmsyncError as exc:
        return failed(
            "dynamics.read_access",
            subject,
            f"entity {name!r}: the application user cannot read {spec.table} ({exc})",
            f"give the application user's security role Read (organization level) on {spec.table}",
        )
    return passed("dynamics.read_access", subject, "the application user can read it")
