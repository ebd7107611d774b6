"""Change tracking: delta tokens, expiry, and the changes between two versions (reference §1).

A token is ``<versionnumber>!<MM/dd/yyyy HH:mm:ss>`` (the observed format): the database version
at the moment of the read, and the emulator time it was issued. A token expires when it is older
than the organization's ``expirechangetrackingindays``, or when its version is below the
database's ``version_floor`` (forced expiry, environment copy); either answers ExpiredVersionStamp
``0x80044352`` with HTTP 400 (our documented choice; the status is undocumented).
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from emulators.dynamics.errors import bad_request, expired_version_stamp
from emulators.dynamics.store import Database, TableData

TOKEN_TIME_FORMAT = "%m/%d/%Y %H:%M:%S"  # noqa: S105 - a date format, not a secret
_TOKEN = re.compile(r"^(\d+)!(\d{2}/\d{2}/\d{4} \d{2}:\d{2}:\d{2})$")


@dataclass(frozen=True)
class DeltaToken:
    """A decoded delta token."""

    version: int
    issued: datetime

    def encode(self) -> str:
        """``919042!08/22/2017 08:10:44``."""
        return f"{self.version}!{self.issued.astimezone(UTC).strftime(TOKEN_TIME_FORMAT)}"

    @classmethod
    def decode(cls, text: str) -> DeltaToken:
        """Parse a token; one we could not have issued is a 400."""
        match = _TOKEN.match(text.strip())
        if match is None:
            raise bad_request("The $deltatoken value is not a valid delta token.")
        issued = datetime.strptime(match.group(2), TOKEN_TIME_FORMAT).replace(tzinfo=UTC)
        return cls(int(match.group(1)), issued)


def check_token(token: DeltaToken, db: Database, now: datetime, expire_days: int) -> None:
    """Raise ExpiredVersionStamp if the token is too old or from before a copy/forced expiry."""
    if token.version < db.version_floor:
        raise expired_version_stamp()
    if now - token.issued > timedelta(days=expire_days):
        raise expired_version_stamp()


@dataclass(frozen=True)
class Change:
    """One entry of a delta: a row id, the version it changed at, and whether it was deleted."""

    record_id: str
    version: int
    deleted: bool


def changes_between(data: TableData, since: int, upto: int) -> tuple[list[Change], list[Change]]:
    """New/updated rows (latest state once) and deletes with a version in ``(since, upto]``.

    Upserts come first ordered by version, then deletes (reference §1, "usually" first). A row
    changed again after ``upto`` is left out: its newer version is in the next delta. A row
    created and deleted in the window comes back as a delete only.
    """
    start = bisect.bisect_right(data.log_versions, since)
    end = bisect.bisect_right(data.log_versions, upto)
    latest: dict[str, tuple[int, bool]] = {}
    versions, ids, deleted = data.log_versions, data.log_ids, data.log_deleted
    for index in range(start, end):
        latest[ids[index]] = (versions[index], deleted[index])
    upserts: list[Change] = []
    deletes: list[Change] = []
    for record_id, (version, was_deleted) in latest.items():
        if was_deleted:
            deletes.append(Change(record_id, version, True))
            continue
        record = data.rows.get(record_id)
        if record is not None and record.version == version:
            upserts.append(Change(record_id, version, False))
    upserts.sort(key=lambda c: c.version)
    deletes.sort(key=lambda c: c.version)
    return upserts, deletes
