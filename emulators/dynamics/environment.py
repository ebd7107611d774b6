"""One emulated Dataverse environment: configuration, tables, rows, clock and identity rows.

Holds the organization row (``expirechangetrackingindays`` is read from it at run time, reference
§1), the business unit, and the application user that client-credentials tokens map to
(reference §7: "S2S needs an application user").
"""

from __future__ import annotations

import random
import uuid
from typing import Any

from emulators.dynamics.clock import EmulatorClock, format_datetime
from emulators.dynamics.config import EmulatorConfig
from emulators.dynamics.store import Database, Record, TableData


def new_guid(rng: random.Random) -> str:
    """A version-4 GUID drawn from ``rng`` (deterministic for a seeded generator)."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


class Environment:
    """The state of one emulated environment."""

    def __init__(self, config: EmulatorConfig, clock: EmulatorClock, seed: int = 0) -> None:
        self.config = config
        self.clock = clock
        self.tables = config.build_tables()
        self.db = Database(self.tables)
        self._tracking_defaults = {n: t.change_tracking for n, t in self.tables.items()}
        self.delta_link_moment = "first_page"
        """Which moment the delta link at the end of a paged full read stands for. UNVERIFIED:
        the docs do not say (see the README). ``first_page`` (default): changes made while
        the later pages were read come back in the next delta; ``last_page``: they do not, so
        a row read on page 1 and deleted before the last page is never reported deleted."""
        rng = random.Random(f"environment-{seed}")
        self.environment_id = new_guid(rng)
        self.organization_id = new_guid(rng)
        self.business_unit_id = new_guid(rng)
        self.app_user_id = new_guid(rng)
        self.reset()

    def table_data(self, logical_name: str) -> TableData:
        """Rows of a table by logical name."""
        return self.db.data[logical_name]

    @property
    def expire_change_tracking_days(self) -> int:
        """The organization's ``expirechangetrackingindays`` (reference §1)."""
        org = self.db.data["organization"].rows.get(self.organization_id)
        value = org.values.get("expirechangetrackingindays") if org else None
        return int(value) if value is not None else self.config.expire_change_tracking_in_days

    def reset(self) -> None:
        """Empty every table, restore table settings, recreate the organization row and app user."""
        for name, enabled in self._tracking_defaults.items():
            self.tables[name].change_tracking = enabled
        self.db.clear()
        self.db.version_floor = 0
        self.install_identity_rows()

    def install_identity_rows(self) -> None:
        """(Re)create the organization row and the application user."""
        now = format_datetime(self.clock.now())
        org = Record(
            {
                "organizationid": self.organization_id,
                "name": self.config.organization_name,
                "expirechangetrackingindays": self.config.expire_change_tracking_in_days,
                "expiresubscriptionsindays": 90,
                "createdon": now,
                "modifiedon": now,
            }
        )
        self.db.load(self.db.data["organization"], {self.organization_id: org})
        self.db.load(self.db.data["systemuser"], {self.app_user_id: self.app_user_record(now)})

    def app_user_record(self, now: str) -> Record:
        """The application user bound to the configured client id (reference §7)."""
        values: dict[str, Any] = {
            "systemuserid": self.app_user_id,
            "firstname": "#",
            "lastname": "dmsync",
            "fullname": "# dmsync",
            "domainname": f"{self.config.auth.client_id}@emulator.invalid",
            "internalemailaddress": f"{self.config.auth.client_id}@emulator.invalid",
            "applicationid": self.config.auth.client_id,
            "azureactivedirectoryobjectid": str(uuid.uuid5(uuid.NAMESPACE_URL, self.app_user_id)),
            "isdisabled": False,
            "accessmode": 4,
            "_businessunitid_value": self.business_unit_id,
            "createdon": now,
            "modifiedon": now,
        }
        return Record(values, {"_businessunitid_value": "businessunit"})
