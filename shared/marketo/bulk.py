"""Bulk lead import: upload CSV files, poll each job, fetch failed and warned rows (reference B.7).

Facts (DEV bulk-lead-import.md, bulk-import.md): ``POST /bulk/v1/leads.json?format=csv`` with a
multipart ``file``; optional ``lookupField`` (``id`` means update only), ``listId``,
``partitionName``; the answer is ``{batchId, importId, status:"Queued"}``. Status comes from
``GET /bulk/v1/leads/batch/{id}.json`` (Queued, Importing, Complete, Failed); failed and warned
rows from ``.../failures.json`` and ``.../warnings.json`` as files in the import's format. At most
2 jobs run and 10 queue; an 11th is refused with 1016 (raised as ThrottledError). Adobe suggests
polling every 5 to 30 s.

The docs show the options both in the query string (``?format=csv``) and as form fields
(``curl -F format=csv``); we send them in both places so either reading is served.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from shared.errors import ApiRequestError, TransientServiceError
from shared.marketo.bulk_csv import build_import_files, parse_problem_file
from shared.marketo.models import ImportResult, ImportRowProblem, ImportStatus
from shared.marketo.transport import MarketoTransport

POLL_FIRST = 5.0
POLL_MAX = 30.0
POLL_GROWTH = 1.5
WAIT_LIMIT = 3_600.0
"""How long :meth:`BulkImportApi.wait` polls before giving up (the job keeps running; its
batch id stays valid for 7 days)."""


def poll_delays(
    first: float = POLL_FIRST,
    most: float = POLL_MAX,
    growth: float = POLL_GROWTH,
    limit: float = WAIT_LIMIT,
) -> list[float]:
    """The waits between status polls: growing from ``first`` to ``most``, summing to at most
    ``limit``."""
    delays: list[float] = []
    delay, total = first, 0.0
    while total + delay <= limit:
        delays.append(delay)
        total += delay
        delay = min(most, delay * growth)
    return delays


class BulkImportApi:
    """Bulk lead import jobs for one Marketo instance."""

    def __init__(self, transport: MarketoTransport) -> None:
        self._transport = transport

    async def import_leads(
        self,
        csv_content: bytes,
        *,
        lookup_field: str | None = None,
        partition_name: str | None = None,
        list_id: int | None = None,
    ) -> ImportStatus:
        """Queue one import job for a CSV file (see :func:`build_import_files`)."""
        options: dict[str, str] = {"format": "csv"}
        if lookup_field:
            options["lookupField"] = lookup_field
        if partition_name:
            options["partitionName"] = partition_name
        if list_id is not None:
            options["listId"] = str(int(list_id))
        body = await self._transport.call(
            "POST",
            "/bulk/v1/leads.json",
            endpoint="bulk.leads.import",
            params=options,
            data=options,
            files={"file": ("leads.csv", csv_content, "text/csv")},
            server_timeout=60.0,
        )
        return self._status(body, "bulk.leads.import")

    async def status(self, batch_id: int) -> ImportStatus:
        """The job's current status and counts."""
        body = await self._transport.call(
            "GET", f"/bulk/v1/leads/batch/{int(batch_id)}.json", endpoint="bulk.leads.status"
        )
        return self._status(body, "bulk.leads.status")

    async def wait(self, batch_id: int, *, delays: Sequence[float] | None = None) -> ImportStatus:
        """Poll until the job is Complete or Failed, backing off between polls.

        Raises:
            TransientServiceError: still running after the last delay (check again later with
                the same batch id).
        """
        status = await self.status(batch_id)
        for delay in poll_delays() if delays is None else delays:
            if status.finished:
                return status
            await self._transport.clock.sleep(delay)
            status = await self.status(batch_id)
        if status.finished:
            return status
        raise TransientServiceError(
            f"Marketo bulk import {batch_id} is still {status.status}; check it again later",
            system="marketo",
        )

    async def failures(self, batch_id: int) -> list[ImportRowProblem]:
        """The rows that failed, with Marketo's reason for each."""
        return await self._problems(batch_id, "failures")

    async def warnings(self, batch_id: int) -> list[ImportRowProblem]:
        """The rows imported with a warning, with Marketo's description."""
        return await self._problems(batch_id, "warnings")

    async def run(
        self,
        rows: Sequence[Mapping[str, Any]],
        columns: Sequence[str],
        *,
        lookup_field: str | None = None,
        partition_name: str | None = None,
        delays: Sequence[float] | None = None,
    ) -> list[ImportResult]:
        """Import ``rows`` end to end: build files, queue each, wait, fetch problems.

        Files are queued one after another and each is awaited before the next, so at most one
        of the instance's 10 queue places is ours at a time.
        """
        results: list[ImportResult] = []
        for file in build_import_files(rows, columns):
            job = await self.import_leads(
                file.content, lookup_field=lookup_field, partition_name=partition_name
            )
            status = await self.wait(job.batch_id, delays=delays)
            failures = await self.failures(job.batch_id) if status.rows_failed else []
            warnings = await self.warnings(job.batch_id) if status.rows_with_warning else []
            results.append(ImportResult(status, failures, warnings))
        return results

    async def _problems(self, batch_id: int, kind: str) -> list[ImportRowProblem]:
        text = await self._transport.call_text(
            f"/bulk/v1/leads/batch/{int(batch_id)}/{kind}.json",
            endpoint=f"bulk.leads.{kind}",
        )
        return parse_problem_file(text)

    @staticmethod
    def _status(body: Mapping[str, Any], endpoint: str) -> ImportStatus:
        result = body.get("result") or []
        if not result or not isinstance(result[0], Mapping):
            raise ApiRequestError(f"Marketo {endpoint} answered no job", system="marketo")
        return ImportStatus.model_validate(result[0])
