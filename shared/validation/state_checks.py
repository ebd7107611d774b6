"""The state side of the checklist: the instance record agrees with the Dynamics environment."""

from __future__ import annotations

from shared.errors import DmsyncError
from shared.state.instances import Instance, InstanceStatus
from shared.state.store import StateStore
from shared.sync.blocking import blocking
from shared.sync.identity import IdentitySource, environment_change
from shared.validation.results import CheckResult, failed, passed, warned


async def instance_record(
    store: StateStore, instance_id: str
) -> tuple[CheckResult, Instance | None]:
    """The state store answers, and what it holds about the instance."""
    subject = "state store (AzureWebJobsStorage)"
    try:
        instance = await blocking(store.instances.get, instance_id)
    except Exception as exc:  # the storage SDK's own errors: any of them means "not usable"
        return failed(
            "state.store",
            subject,
            f"the instances table cannot be read ({type(exc).__name__})",
            "check AzureWebJobsStorage (or its __accountName/__tableServiceUri form) and that "
            "your sign-in has the Storage Table Data Contributor role on the account",
        ), None
    where = "registered" if instance is not None else "not registered yet"
    return passed("state.store", subject, f"readable; instance {instance_id} {where}"), instance


async def organization_linked(
    instance_id: str, instance: Instance | None, source: IdentitySource
) -> CheckResult:
    """The organization Dynamics reports now is the one the instance was linked to."""
    subject = f"instance {instance_id}: Dynamics organization"
    try:
        seen = await source.identity()
    except DmsyncError as exc:
        return failed(
            "state.organization",
            subject,
            f"the organization cannot be read ({exc})",
            "see the Dataverse lines above",
        )
    if instance is None:
        return passed(
            "state.organization",
            subject,
            f"not registered yet: the app links it to organization {seen.organization_id} "
            "on its first run",
        )
    recorded = instance.config.get("dynamics_identity") or {
        "organization_id": instance.dynamics.organization_id
    }
    change = environment_change(recorded, seen)
    if change is not None:
        return failed(
            "state.organization",
            subject,
            f"organization {seen.organization_id} is not the one the instance was linked to "
            f"({recorded.get('organization_id')})",
            "if DYNAMICS_URL points at the wrong environment, fix it; if the environment was "
            "refreshed or copied on purpose, run `dmsync instance relink`",
            blocks_start=False,
        )
    return passed("state.organization", subject, f"organization {seen.organization_id}")


def instance_status(instance_id: str, instance: Instance | None) -> CheckResult | None:
    """A warning while the instance is paused or suspended (nothing syncs)."""
    if instance is None or instance.status is InstanceStatus.ACTIVE:
        return None
    reason = f": {instance.status_reason}" if instance.status_reason else ""
    return warned(
        "state.instance_status",
        f"instance {instance_id}",
        f"{instance.status.value}{reason}",
        f"`dmsync instance resume {instance_id}` when it should sync again",
    )
