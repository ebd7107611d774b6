"""The Marketo side of the checklist: signed in, each object the mapping uses readable by the
API user, every mapped field present, and the shared API budget's state today."""

from __future__ import annotations

from shared.errors import DmsyncError
from shared.marketo.client import MarketoClient
from shared.settings import MarketoSettings
from shared.sync.config import EntitySpec, SyncConfig, TargetKind
from shared.sync.d2m.writer import MarketoRecordWriter
from shared.sync.schema_check import marketo_problems, sync_markers
from shared.validation.results import CheckResult, failed, passed, warned

BUDGET_WARNING_SHARE = 0.8
"""Above this share of the daily budget used, the budget line is a warning."""


async def credentials(marketo: MarketoClient) -> CheckResult:
    """The custom service's client id and secret give an access token."""
    subject = "Marketo sign-in"
    try:
        await marketo.transport.tokens.get()
    except DmsyncError as exc:
        return failed(
            "marketo.credentials",
            subject,
            f"no access token ({exc})",
            "check MARKETO_CLIENT_ID and MARKETO_CLIENT_SECRET (Admin → LaunchPoint → the "
            "custom service → View Details) and MARKETO_BASE_URL (Admin → Web Services)",
        )
    return passed("marketo.credentials", subject, "access token obtained")


class FieldCatalogue:
    """The fields of each Marketo object the mapping uses, described once each."""

    def __init__(self, marketo: MarketoClient) -> None:
        self.marketo = marketo
        self.writer = MarketoRecordWriter(marketo)
        self.fields: dict[str, set[str] | None] = {}

    @staticmethod
    def object_of(spec: EntitySpec) -> str:
        """The Marketo object an entity writes: ``lead``, ``company``, a custom object name."""
        return spec.object_name or spec.target.value

    async def describe(self, spec: EntitySpec) -> tuple[CheckResult | None, set[str] | None]:
        """The object's field names, and the access line on the object's first description."""
        key = self.object_of(spec)
        if key in self.fields:
            return None, self.fields[key]
        subject = f"Marketo object {key}"
        try:
            if spec.target is TargetKind.LEAD:
                names = {f.api_name for f in await self.marketo.leads.describe() if f.api_name}
            else:
                names = (await self.writer.objects_api(spec).describe()).field_names()
        except DmsyncError as exc:
            self.fields[key] = None
            return failed(
                "marketo.object_access",
                subject,
                f"the API user cannot describe {key} ({exc})",
                f"give the API user's role the permission for {key} (Admin → Users & Roles → "
                "the API role: Read-Write Person / Read-Write Custom Object / Read-Write "
                "Company as the object needs), or check the object exists and is approved",
            ), None
        self.fields[key] = names
        return passed("marketo.object_access", subject, f"described ({len(names)} fields)"), names


def field_checks(
    name: str, spec: EntitySpec, config: SyncConfig, fields: set[str]
) -> list[CheckResult]:
    """Every field the entity writes (and the sync's own markers) exists on its object."""
    subject = f"Marketo fields of entity {name}"
    problems = marketo_problems(name, spec, fields, sync_markers(config, spec))
    if not problems:
        return [passed("marketo.fields", subject, "every mapped field exists")]
    return [
        failed(
            "marketo.fields",
            subject,
            problem,
            "create the field in Marketo (Admin → Field Management, or the custom object's "
            "fields) with the API name the mapping gives, or fix the mapping",
        )
        for problem in problems
    ]


async def budget(marketo: MarketoClient, settings: MarketoSettings) -> CheckResult:
    """Calls Marketo counted today against this integration's daily budget (one call)."""
    subject = "Marketo API budget"
    limit = settings.daily_call_budget
    try:
        used = await marketo.daily_usage()
    except DmsyncError as exc:
        return failed(
            "marketo.budget",
            subject,
            f"today's usage cannot be read ({exc})",
            "give the API user's role the Read-Only Assets / usage permission "
            "(stats/usage.json), or ignore this if usage reports are not allowed",
            blocks_start=False,
        )
    blocked = await marketo.governor.quota_stop_until()
    detail = f"{used} of {limit} calls used today ({100.0 * used / limit:.0f}%)"
    if blocked is not None or used >= limit:
        resumes = f" until {blocked:%Y-%m-%d %H:%M} UTC" if blocked else ""
        return failed(
            "marketo.budget",
            subject,
            f"{detail}: no writes{resumes}",
            "wait for the daily reset (00:00 US Central), or raise MARKETO_DAILY_CALL_BUDGET "
            "if the instance's quota allows it",
            blocks_start=False,
        )
    if used >= BUDGET_WARNING_SHARE * limit:
        return warned(
            "marketo.budget",
            subject,
            detail,
            "other integrations or a large load are using the shared quota; the sync stops "
            "writing when the budget is used",
        )
    return passed("marketo.budget", subject, detail)
