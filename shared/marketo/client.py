"""``MarketoClient``: one object per Marketo instance that the sync engine holds.

It owns one httpx pool and one token, shares the process-wide governor of its instance and
client id, and exposes the API groups as attributes::

    async with MarketoClient(load(MarketoSettings)) as marketo:
        outcomes = await marketo.leads.sync(records, lookup_field="externalPersonId")
        for record, outcome in zip(records, outcomes, strict=True):
            ...
        print(marketo.stats.snapshot())
"""

from __future__ import annotations

import random
from types import TracebackType
from typing import Any

import httpx

from shared.clock import SYSTEM_CLOCK, Clock
from shared.marketo.activities import ActivitiesApi
from shared.marketo.bulk import BulkImportApi
from shared.marketo.governor import CallGate, governor_for
from shared.marketo.leads import LeadsApi
from shared.marketo.objects import (
    COMPANIES,
    OPPORTUNITIES,
    OPPORTUNITY_ROLES,
    SALES_PERSONS,
    ObjectsApi,
    custom_object_type,
)
from shared.marketo.stats import CallStats
from shared.marketo.transport import MarketoTransport
from shared.settings import MarketoSettings


class MarketoClient:
    """The Marketo REST API of one instance, within this process's share of its limits."""

    def __init__(
        self,
        settings: MarketoSettings,
        *,
        clock: Clock = SYSTEM_CLOCK,
        transport: httpx.AsyncBaseTransport | None = None,
        governor: CallGate | None = None,
        rng: random.Random | None = None,
    ) -> None:
        """Build the client.

        Args:
            settings: base URL, credentials and the share of the limits.
            clock: time source for the governor, token expiry and backoff.
            transport: an httpx transport to use instead of the network (tests).
            governor: a governor to use instead of the process-wide one for this instance.
            rng: the jitter source (seed it in tests).
        """
        self.governor: CallGate = governor or governor_for(settings, clock=clock)
        self.transport = MarketoTransport(
            settings, governor=self.governor, clock=clock, transport=transport, rng=rng
        )
        self.leads = LeadsApi(self.transport)
        self.companies = ObjectsApi(self.transport, COMPANIES)
        self.opportunities = ObjectsApi(self.transport, OPPORTUNITIES)
        self.opportunity_roles = ObjectsApi(self.transport, OPPORTUNITY_ROLES)
        self.sales_persons = ObjectsApi(self.transport, SALES_PERSONS)
        self.activities = ActivitiesApi(self.transport)
        self.bulk = BulkImportApi(self.transport)

    def custom_object(self, api_name: str) -> ObjectsApi:
        """The API of custom object type ``api_name`` (``customobjects/{apiName}``)."""
        return ObjectsApi(self.transport, custom_object_type(api_name))

    @property
    def stats(self) -> CallStats:
        """Calls made to this instance by this process (all clients), per endpoint and outcome."""
        return self.governor.stats

    async def daily_usage(self) -> int:
        """Calls Marketo counted today for this API user (``stats/usage.json``), also fed to
        the governor so a restarted process does not start its daily count from zero.

        The whole instance's total is used when the answer has no entry for our API user.
        """
        body = await self.transport.call("GET", "/rest/v1/stats/usage.json", endpoint="stats.usage")
        used = _usage_for(body.get("result") or [], self.transport.tokens.current_scope)
        self.governor.observe_daily_usage(used)
        return used

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self.transport.aclose()

    async def __aenter__(self) -> MarketoClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def _usage_for(days: list[Any], user: str | None) -> int:
    today = days[-1] if days and isinstance(days[-1], dict) else {}
    for entry in today.get("users") or []:
        if isinstance(entry, dict) and user and entry.get("userId") == user:
            return int(entry.get("count", 0))
    return int(today.get("total", 0))
