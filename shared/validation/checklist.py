"""The checklist, in one place: what ``dmsync validate`` prints and what the app checks at start.

Order: Dataverse (reachable, sign-in, application user, each mapped table), Marketo (sign-in,
each object and its fields, the day's budget), then the instance (organization still the linked
one, paused or suspended). A failed sign-in marks the checks behind it "not checked" rather than
failing each of them again.

At start (:func:`validate_at_start`) every ✘ line goes to telemetry as an error log record
(``customDimensions``: ``check``, ``reason``, ``instance``), and the app refuses to start when a
failure would make the mapping unworkable (``blocks_start``); an environment copy or a spent
budget is left to the running sync, which handles both (suspension, parking).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from shared.dynamics.client import DynamicsClient
from shared.errors import ConfigurationError
from shared.marketo.client import MarketoClient
from shared.settings import MarketoSettings
from shared.state.store import StateStore
from shared.sync.config import SyncConfig
from shared.sync.identity import IdentitySource
from shared.validation import dynamics_checks, marketo_checks, state_checks
from shared.validation.results import Checklist, CheckStatus, skipped

log = logging.getLogger("dmsync.validate")


@dataclass(frozen=True)
class ChecklistTargets:
    """What the checks look at: the mapping, both clients, the settings, the instance record."""

    config: SyncConfig
    dynamics: DynamicsClient
    marketo: MarketoClient
    dynamics_url: str
    marketo_settings: MarketoSettings
    instance_id: str
    store: StateStore
    identity: IdentitySource
    ca_bundle: str | None = None


async def run_checklist(targets: ChecklistTargets, *, at_start: bool = False) -> Checklist:
    """Run every check (see the module docstring); never raises for a failed check.

    ``at_start`` (the app's own start, on every worker): the checks whose answer the sync's own
    first calls give anyway are left out, so a worker start costs one Dataverse request (every
    table's definition in one query) and no Marketo call beyond the describes: the URL probe
    (the sign-in proves it), WhoAmI and the organization check (every timer tick checks the
    environment's identity), a one-row read per table (the first page read proves it) and the
    daily budget (the shared budget tracks it).
    """
    checklist = Checklist()
    dynamics_ok = await _dynamics(targets, checklist, at_start=at_start)
    await _marketo(targets, checklist, at_start=at_start)
    stored, instance = await state_checks.instance_record(targets.store, targets.instance_id)
    checklist.add(stored)
    if stored.status is CheckStatus.FAILED:
        return checklist
    if dynamics_ok and not at_start:
        checklist.add(
            await state_checks.organization_linked(targets.instance_id, instance, targets.identity)
        )
    elif not at_start:
        checklist.add(
            skipped("state.organization", f"instance {targets.instance_id}", "no Dataverse token")
        )
    status = state_checks.instance_status(targets.instance_id, instance)
    if status is not None:
        checklist.add(status)
    return checklist


async def _dynamics(targets: ChecklistTargets, checklist: Checklist, *, at_start: bool) -> bool:
    """The Dataverse lines; whether the app could sign in (the later checks need it)."""
    if not at_start:
        reachable = checklist.add(
            await dynamics_checks.url_reachable(targets.dynamics_url, targets.ca_bundle)
        )
        if reachable.status is CheckStatus.FAILED:
            checklist.add(
                skipped("dynamics.token", "Dataverse sign-in", "the URL is not reachable")
            )
            return False
    token = checklist.add(await dynamics_checks.token_obtained(targets.dynamics))
    if token.status is CheckStatus.FAILED:
        checklist.add(
            skipped("dynamics.table", "Dynamics tables", "no token (fix the sign-in first)")
        )
        return False
    if not at_start:
        checklist.add(await dynamics_checks.application_user(targets.dynamics))
    definitions = await dynamics_checks.definitions(targets.config, targets.dynamics)
    for name in targets.config.order:
        lines, unfiltered = await dynamics_checks.table_checks(
            name,
            targets.config.entity[name],
            targets.dynamics,
            definitions,
            read_access=not at_start,
        )
        checklist.extend(lines)
        if unfiltered:
            checklist.unfiltered.append(name)
    return True


async def _marketo(targets: ChecklistTargets, checklist: Checklist, *, at_start: bool) -> None:
    signed_in = checklist.add(await marketo_checks.credentials(targets.marketo))
    if signed_in.status is CheckStatus.FAILED:
        checklist.add(
            skipped("marketo.fields", "Marketo objects", "no access token (fix the sign-in first)")
        )
        return
    catalogue = marketo_checks.FieldCatalogue(targets.marketo)
    for name in targets.config.order:
        spec = targets.config.entity[name]
        access, fields = await catalogue.describe(spec)
        if access is not None:
            checklist.add(access)
        if fields is not None:
            checklist.extend(marketo_checks.field_checks(name, spec, targets.config, fields))
    if not at_start:
        checklist.add(await marketo_checks.budget(targets.marketo, targets.marketo_settings))


async def validate_at_start(targets: ChecklistTargets) -> SyncConfig:
    """The app's start: run the checklist, report each failure, refuse a mapping that cannot
    work; return the configuration to run (the sync filter off where the column is missing).

    Raises:
        ConfigurationError: naming every blocking failure and what to do.
    """
    checklist = await run_checklist(targets, at_start=True)
    for failure in checklist.failures:
        log.error(
            "validate: %s: %s (%s)",
            failure.subject,
            failure.detail,
            failure.fix,
            extra={
                "check": failure.check,
                "reason": failure.detail,
                "instance": targets.instance_id,
            },
        )
    blocking = [f for f in checklist.failures if f.blocks_start]
    if blocking:
        raise ConfigurationError(
            "the app cannot start; fix these (dmsync validate lists them): "
            + "; ".join(f"{f.detail} → {f.fix}" for f in blocking)
        )
    config = targets.config
    if not checklist.unfiltered:
        return config
    log.info(
        "no new_synctomkto column on %s: every record of these entities syncs (reference A.4)",
        ", ".join(checklist.unfiltered),
    )
    entities = {
        name: spec.model_copy(update={"sync_filter": False})
        if name in checklist.unfiltered
        else spec
        for name, spec in config.entity.items()
    }
    return config.model_copy(update={"entity": entities})
