"""Turn the API clients' running call counters into telemetry, once per timer tick.

Both clients count every request they send (the Dataverse client: requests, retries and 429s;
the Marketo governor: calls per endpoint and outcome). The reporter remembers the last totals
and reports the difference, so each request is counted once whichever job made it.
"""

from __future__ import annotations

import logging

from shared.dynamics.client import DynamicsClient
from shared.dynamics.limiter import SharedLimiter
from shared.errors import DmsyncError
from shared.marketo.client import MarketoClient
from shared.marketo.shared_governor import SharedGovernor
from shared.telemetry.metrics import SyncTelemetry
from shared.telemetry.names import ApiOutcome, System

THROTTLE_CODES = frozenset({"606", "615", "429"})
log = logging.getLogger("dmsync.usage")


class ApiUsageReporter:
    """Reports API calls made since the previous report."""

    def __init__(
        self,
        dynamics: DynamicsClient,
        marketo: MarketoClient,
        telemetry: SyncTelemetry,
        instance_id: str,
    ) -> None:
        self.dynamics = dynamics
        self.marketo = marketo
        self.telemetry = telemetry
        self.instance_id = instance_id
        self._dynamics_seen = (0, 0)
        self._marketo_seen: dict[tuple[str, str], int] = {}

    def report(self) -> None:
        """Emit the calls made since the last report, per system, operation and outcome."""
        counters = self.dynamics.counters
        requests, throttles = counters.requests, counters.throttles
        new_requests = requests - self._dynamics_seen[0]
        new_throttles = throttles - self._dynamics_seen[1]
        self._dynamics_seen = (requests, throttles)
        if new_requests - new_throttles > 0:
            self.telemetry.api_call(
                System.DYNAMICS, "webapi", ApiOutcome.SUCCESS, count=new_requests - new_throttles
            )
        if new_throttles > 0:
            self.telemetry.api_call(
                System.DYNAMICS, "webapi", ApiOutcome.THROTTLED, code="429", count=new_throttles
            )
            for _ in range(new_throttles):
                self.telemetry.throttled(System.DYNAMICS, "429", instance=self.instance_id)

        snapshot = self.marketo.stats.snapshot()
        for endpoint, outcomes in snapshot["by_endpoint"].items():
            for outcome, total in outcomes.items():
                key = (endpoint, outcome)
                delta = total - self._marketo_seen.get(key, 0)
                self._marketo_seen[key] = total
                if delta <= 0:
                    continue
                operation = endpoint.replace("customobjects.", "co.")[:60]
                if outcome == "ok":
                    self.telemetry.api_call(System.MARKETO, operation, ApiOutcome.SUCCESS,
                                            count=delta)  # fmt: skip
                    continue
                kind = ApiOutcome.THROTTLED if outcome in THROTTLE_CODES else ApiOutcome.ERROR
                self.telemetry.api_call(System.MARKETO, operation, kind, code=outcome, count=delta)
                if kind is ApiOutcome.THROTTLED:
                    for _ in range(delta):
                        self.telemetry.throttled(System.MARKETO, outcome,
                                                 instance=self.instance_id)  # fmt: skip
        limits = self.marketo.governor.limits
        self.telemetry.daily_quota(
            System.MARKETO, self.instance_id, self.marketo.governor.daily_used, limits.daily_budget
        )

    async def report_shared(self, dynamics_limiter: SharedLimiter | None = None) -> None:
        """Emit the shared budgets' use by the whole app (read from their rows)."""
        governor = self.marketo.governor
        try:
            if isinstance(governor, SharedGovernor):
                marketo = await governor.usage()
                self.telemetry.shared_budget(
                    System.MARKETO, self.instance_id, marketo.calls_in_window, marketo.in_flight
                )
                if marketo.daily_budget is not None:
                    self.telemetry.daily_quota(
                        System.MARKETO, self.instance_id, marketo.day_used, marketo.daily_budget
                    )
            if dynamics_limiter is not None:
                dataverse = await dynamics_limiter.usage()
                self.telemetry.shared_budget(
                    System.DYNAMICS, self.instance_id, dataverse.calls_in_window,
                    dataverse.in_flight,
                )  # fmt: skip
        except DmsyncError as failure:  # telemetry never fails a tick
            log.warning("shared budget usage not reported: %s", failure)
