"""A small typed client for the control API (``/_emulator/``), for tests and benchmarks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx


@dataclass(frozen=True)
class UsageReport:
    """``GET /_emulator/usage``."""

    requests: int
    counted: int
    identity_calls: int
    by_endpoint: dict[str, int]
    counted_by_endpoint: dict[str, int]
    errors: dict[str, int]
    record_reasons: dict[str, int]
    faults: dict[str, int]
    max_concurrency: int
    max_calls_in_window: int
    in_flight: int
    calls_in_window: int
    used_today: int

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> UsageReport:
        """Parse the control API's answer."""
        return cls(
            requests=data["requests"],
            counted=data["counted"],
            identity_calls=data["identityCalls"],
            by_endpoint=dict(data["byEndpoint"]),
            counted_by_endpoint=dict(data["countedByEndpoint"]),
            errors=dict(data["errors"]),
            record_reasons=dict(data["recordReasons"]),
            faults=dict(data["faults"]),
            max_concurrency=data["maxConcurrency"],
            max_calls_in_window=data["maxCallsInWindow"],
            in_flight=data["inFlight"],
            calls_in_window=data["callsInWindow"],
            used_today=data["usedToday"],
        )


class ControlError(Exception):
    """The control API refused a request."""


class MarketoControl:
    """Seed, inspect and steer a running emulator."""

    def __init__(
        self, base_url: str, *, transport: httpx.BaseTransport | None = None, timeout: float = 60
    ) -> None:
        self._http = httpx.Client(
            base_url=f"{base_url.rstrip('/')}/_emulator", transport=transport, timeout=timeout
        )

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._http.close()

    def _call(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        response = self._http.request(method, path, json=body)
        if response.status_code >= 400:
            raise ControlError(f"{method} {path}: HTTP {response.status_code} {response.text}")
        return response.json()

    # --- state -----------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """``{"status": "ok", "munchkinId": ...}``."""
        result: dict[str, Any] = self._call("GET", "/health")
        return result

    def reset(self, *, keep_tokens: bool = False) -> None:
        """Forget all data, counters, faults and clock changes (and tokens unless kept)."""
        self._call("POST", "/reset", {"tokens": not keep_tokens})

    def seed(
        self,
        *,
        leads: Sequence[Mapping[str, Any]] = (),
        companies: Sequence[Mapping[str, Any]] = (),
        opportunities: Sequence[Mapping[str, Any]] = (),
        opportunity_roles: Sequence[Mapping[str, Any]] = (),
        sales_persons: Sequence[Mapping[str, Any]] = (),
        custom_objects: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
        generate_leads: int = 0,
        generate_seed: int = 1,
        activities: bool = False,
    ) -> dict[str, Any]:
        """Insert records directly; returns the ids created per kind."""
        body: dict[str, Any] = {
            "leads": list(leads),
            "companies": list(companies),
            "opportunities": list(opportunities),
            "opportunityRoles": list(opportunity_roles),
            "salesPersons": list(sales_persons),
            "customObjects": {k: list(v) for k, v in (custom_objects or {}).items()},
            "activities": activities,
        }
        if generate_leads:
            body["generateLeads"] = {"count": generate_leads, "seed": generate_seed}
        result: dict[str, Any] = self._call("POST", "/seed", body)
        return result

    def leads(self, *, offset: int = 0, limit: int = 0) -> list[dict[str, Any]]:
        """Stored leads, lowest id first."""
        records: list[dict[str, Any]] = self._call("GET", f"/leads?offset={offset}&limit={limit}")[
            "records"
        ]
        return records

    def lead(self, lead_id: int) -> dict[str, Any] | None:
        """One stored lead, or ``None``."""
        response = self._http.get(f"/leads/{lead_id}")
        if response.status_code == 404:
            return None
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def records(self, object_path: str) -> list[dict[str, Any]]:
        """Stored records of ``companies``, ``opportunities``, ``opportunities/roles``,
        ``salespersons`` or ``customobjects/<apiName>``."""
        records: list[dict[str, Any]] = self._call("GET", f"/objects/{object_path}")["records"]
        return records

    def activities(self) -> list[dict[str, Any]]:
        """The raw activity log."""
        records: list[dict[str, Any]] = self._call("GET", "/activities")["records"]
        return records

    def create_lead_inside(self, fields: Mapping[str, Any], **origin: str) -> int:
        """A lead created inside Marketo (logs New Lead); returns its id."""
        lead_id: int = self._call("POST", "/leads/create", {"fields": dict(fields), **origin})["id"]
        return lead_id

    def change_lead(self, lead_id: int, fields: Mapping[str, Any], **origin: str) -> list[str]:
        """A change made inside Marketo (``source``/``reason``/``user`` optional)."""
        changed: list[str] = self._call(
            "POST", f"/leads/{lead_id}/change", {"fields": dict(fields), **origin}
        )["changed"]
        return changed

    def delete_lead_inside(self, lead_id: int) -> None:
        """A lead deleted inside Marketo (logs Delete Lead)."""
        self._call("POST", f"/leads/{lead_id}/delete", {})

    def add_activities(self, lead_id: int, count: int = 1, activity_type_id: int = 1) -> None:
        """Activities the change feed scans but does not return (web visits by default)."""
        self._call(
            "POST",
            "/activities",
            {"leadId": lead_id, "count": count, "activityTypeId": activity_type_id},
        )

    # --- usage and limits ------------------------------------------------------------------

    def usage(self) -> UsageReport:
        """Calls, errors and peaks since the last reset."""
        return UsageReport.from_json(self._call("GET", "/usage"))

    def reset_usage(self) -> None:
        """Zero the counters and limit windows."""
        self._call("POST", "/usage/reset")

    def limits(self) -> dict[str, Any]:
        """The limits in force."""
        result: dict[str, Any] = self._call("GET", "/limits")
        return result

    def set_limits(self, **changes: Any) -> dict[str, Any]:
        """Change limits (``rate_calls``, ``rate_window_seconds``, ``concurrency``,
        ``daily_quota``, ``max_body_bytes``, ``max_bulk_body_bytes``, ``max_uri_bytes``,
        ``enabled``); counters restart."""
        result: dict[str, Any] = self._call("PUT", "/limits", changes)
        return result

    def set_faults(
        self,
        *,
        rates: Mapping[str, float] | None = None,
        latency_ms: tuple[float, float] = (0.0, 0.0),
        hang_seconds: float = 35.0,
        paths: Sequence[str] = (),
        next_faults: Sequence[str] = (),
        seed: int = 0,
    ) -> None:
        """Replace the fault settings (see :mod:`emulators.marketo.faults`)."""
        self._call(
            "PUT",
            "/faults",
            {
                "rates": dict(rates or {}),
                "latency_ms": list(latency_ms),
                "hang_seconds": hang_seconds,
                "paths": list(paths),
                "next": list(next_faults),
                "seed": seed,
            },
        )

    def clear_faults(self) -> None:
        """No faults, no latency."""
        self._call("DELETE", "/faults")

    def hold(self, stage: str = "admitted", paths: Sequence[str] = ()) -> None:
        """Hold calls at ``stage`` (``admitted`` or ``upsert``) until :meth:`release`."""
        self._call("PUT", "/gate", {"stage": stage, "paths": list(paths)})

    def waiting(self) -> int:
        """Calls currently held."""
        waiting: int = self._call("GET", "/gate")["waiting"]
        return waiting

    def release(self) -> None:
        """Let held calls go."""
        self._call("POST", "/gate/release")

    # --- time, tokens, bulk, settings --------------------------------------------------------

    def now(self) -> datetime:
        """The emulated time."""
        return datetime.fromisoformat(self._call("GET", "/clock")["now"])

    def advance_clock(self, seconds: float) -> datetime:
        """Move emulated time forward."""
        return datetime.fromisoformat(self._call("POST", "/clock", {"advance": seconds})["now"])

    def set_clock(self, moment: datetime) -> datetime:
        """Jump forward to ``moment``."""
        return datetime.fromisoformat(
            self._call("POST", "/clock", {"set": moment.isoformat()})["now"]
        )

    def freeze_clock(self) -> None:
        """Stop emulated time (windows and expiry then move only when advanced)."""
        self._call("POST", "/clock", {"freeze": True})

    def unfreeze_clock(self) -> None:
        """Let emulated time run again."""
        self._call("POST", "/clock", {"freeze": False})

    def expire_tokens(self) -> int:
        """Expire every token now (the next call with one answers 602)."""
        expired: int = self._call("POST", "/tokens/expire")["expired"]
        return expired

    def pause_bulk(self) -> None:
        """Stop the bulk import worker (jobs stay where they are)."""
        self._call("PUT", "/bulk", {"paused": True})

    def resume_bulk(self) -> None:
        """Restart the bulk import worker."""
        self._call("PUT", "/bulk", {"paused": False})

    def bulk_step(self, steps: int = 1) -> list[dict[str, Any]]:
        """Run worker steps now; returns every job's status."""
        jobs: list[dict[str, Any]] = self._call("POST", "/bulk/step", {"steps": steps})["jobs"]
        return jobs

    def set_native_crm_sync(self, enabled: bool) -> None:
        """Act as an instance with a native CRM sync (object writes answer 1018)."""
        self._call("PUT", "/settings", {"nativeCrmSync": enabled})

    def set_token_ttl(self, seconds: int) -> None:
        """Lifetime of tokens issued from now on."""
        self._call("PUT", "/settings", {"tokenTtlSeconds": seconds})
