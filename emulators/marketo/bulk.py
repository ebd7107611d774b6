"""Bulk lead import (reference B.7; bulk-import.md, bulk-lead-import.md).

A submitted file becomes a job in a FIFO queue (at most ``max_queued`` = 10 jobs, importing ones
included, else 1016); at most ``max_importing`` = 2 import at a time. A background task moves jobs
Queued → Importing → Complete (or Failed), ``rows_per_step`` rows per step; the control API can
pause it and run single steps so tests see every state without waiting. Rows are written like
Sync Leads ``createOrUpdate`` (``lookupField=id``: update only), with the same validation; a row
that fails goes to the failures file with an extra "Import Failure Reason" column.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import itertools
from dataclasses import dataclass, field
from typing import Any, Literal

from emulators.marketo.config import BulkSettings
from emulators.marketo.fields import FieldDef, lookup_key
from emulators.marketo.instance import Instance
from emulators.marketo.leads import Action, Origin, apply_writes, plan_writes

JobStatus = Literal["Queued", "Importing", "Complete", "Failed"]
DELIMITERS = {"csv": ",", "tsv": "\t", "ssv": ";"}
"""bulk-lead-import.md: "a flat file with the delimiters (comma, tab, or semi-colon)"."""
FAILURE_COLUMN = "Import Failure Reason"
WARNING_COLUMN = "Import Warning Reason"


@dataclass
class ImportJob:
    """One bulk import job."""

    batch_id: int
    file_format: str
    lookup: FieldDef
    partition_id: int
    text: str
    submitted_at: float
    origin: Origin
    status: JobStatus = "Queued"
    header: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    next_row: int = 0
    leads_processed: int = 0
    failures: list[tuple[list[str], str]] = field(default_factory=list)
    warnings: list[tuple[list[str], str]] = field(default_factory=list)
    message: str = "Queued for processing"
    seen_keys: set[Any] = field(default_factory=set)

    def status_item(self) -> dict[str, Any]:
        """The result item of Get Import Lead Status."""
        return {
            "batchId": self.batch_id,
            "importId": str(self.batch_id),
            "status": self.status,
            "numOfLeadsProcessed": self.leads_processed,
            "numOfRowsFailed": len(self.failures),
            "numOfRowsWithWarning": len(self.warnings),
            "message": self.message,
        }

    def report(self, kind: Literal["failures", "warnings"]) -> str:
        """The failures or warnings file, in the job's own format."""
        rows = self.failures if kind == "failures" else self.warnings
        column = FAILURE_COLUMN if kind == "failures" else WARNING_COLUMN
        buffer = io.StringIO()
        writer = csv.writer(buffer, delimiter=DELIMITERS[self.file_format], lineterminator="\n")
        writer.writerow([*self.header, column])
        for values, why in rows:
            writer.writerow([*values, why])
        return buffer.getvalue()


class BulkImporter:
    """The import queue of one instance and the task that works through it."""

    def __init__(self, instance: Instance, settings: BulkSettings) -> None:
        self.instance = instance
        self.settings = settings
        self.jobs: dict[int, ImportJob] = {}
        self.paused = False
        self._ids = itertools.count(1001)
        self._task: asyncio.Task[None] | None = None

    def active(self) -> int:
        """Jobs queued or importing (what the queue limit counts)."""
        return sum(1 for job in self.jobs.values() if job.status in ("Queued", "Importing"))

    def full(self) -> bool:
        """Whether another job would exceed ``max_queued`` (bulk-lead-import.md 1016)."""
        return self.active() >= self.settings.max_queued

    def submit(
        self,
        text: str,
        file_format: str,
        lookup: FieldDef,
        partition_id: int,
        origin: Origin,
    ) -> ImportJob:
        """Queue a job (the caller checked :meth:`full`)."""
        job = ImportJob(
            batch_id=next(self._ids),
            file_format=file_format,
            lookup=lookup,
            partition_id=partition_id,
            text=text,
            submitted_at=self.instance.clock.time(),
            origin=origin,
        )
        self.jobs[job.batch_id] = job
        return job

    def get(self, batch_id: int) -> ImportJob | None:
        """A job still within its retention period (batch ids are "valid for seven days")."""
        job = self.jobs.get(batch_id)
        if job is None:
            return None
        age = self.instance.clock.time() - job.submitted_at
        if age > self.settings.retention_days * 86_400:
            del self.jobs[batch_id]
            return None
        return job

    def step(self) -> None:
        """Start queued jobs while fewer than ``max_importing`` import, then advance each
        importing job by up to ``rows_per_step`` rows."""
        importing = [job for job in self.jobs.values() if job.status == "Importing"]
        for job in self.jobs.values():
            if len(importing) >= self.settings.max_importing:
                break
            if job.status == "Queued" and self._start(job):
                importing.append(job)
        for job in importing:
            self._advance(job)

    def _start(self, job: ImportJob) -> bool:
        """Parse the file; ``False`` (and status Failed) when it cannot be imported."""
        reader = csv.reader(io.StringIO(job.text), delimiter=DELIMITERS[job.file_format])
        rows = [row for row in reader if any(cell.strip() for cell in row)]
        job.text = ""
        if not rows:
            self._fail(job, "Import file is empty")
            return False
        header = [name.strip() for name in rows[0]]
        schema = self.instance.lead_schema
        unknown = [name for name in header if schema.get(name) is None]
        if unknown:
            self._fail(job, f"Invalid column header(s): {', '.join(unknown)}")
            return False
        canonical = [schema.get(name).name for name in header]  # type: ignore[union-attr]
        if job.lookup.name not in canonical:
            self._fail(job, f"Lookup field '{job.lookup.name}' not found in the file header")
            return False
        job.header = header
        job.rows = rows[1:]
        job.status = "Importing"
        job.message = "Import in progress"
        return True

    def _fail(self, job: ImportJob, message: str) -> None:
        job.status = "Failed"
        job.message = message

    def _advance(self, job: ImportJob) -> None:
        end = min(len(job.rows), job.next_row + self.settings.rows_per_step)
        chunk = job.rows[job.next_row : end]
        records: list[dict[str, str]] = []
        for row in chunk:
            if len(row) != len(job.header):
                job.failures.append(
                    (row, f"Row has {len(row)} values, the header has {len(job.header)}")
                )
                continue
            record = {name: value for name, value in zip(job.header, row, strict=True) if value}
            key = record.get(job.lookup.name)
            if key is not None:
                seen = lookup_key(job.lookup, key)
                if seen in job.seen_keys:
                    job.warnings.append((row, "Duplicate lookup value in file; row applied again"))
                job.seen_keys.add(seen)
            records.append(record)
        action: Action = "updateOnly" if job.lookup.name == "id" else "createOrUpdate"
        plan = plan_writes(
            self.instance,
            records,
            action=action,
            lookup=job.lookup,
            partition_id=job.partition_id,
        )
        results = apply_writes(self.instance, plan, job.origin)
        row_of = [row for row in chunk if len(row) == len(job.header)]
        for row, outcome in zip(row_of, results, strict=True):
            if outcome["status"] == "skipped":
                job.failures.append((row, outcome["reasons"][0]["message"]))
            else:
                job.leads_processed += 1
        job.next_row = end
        if job.next_row >= len(job.rows):
            job.status = "Complete"
            failed = len(job.failures)
            imported = job.leads_processed
            job.message = (
                f"Import completed with errors, {imported} records imported "
                f"({imported} members), {failed} failed"
                if failed
                else f"Import succeeded, {imported} records imported ({imported} members)"
            )

    async def run(self) -> None:
        """The background task: a step every ``step_seconds`` unless paused."""
        while True:
            await asyncio.sleep(self.settings.step_seconds)
            if not self.paused:
                self.step()

    def start(self) -> None:
        """Start the background task on the running loop."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self.run())

    async def stop(self) -> None:
        """Stop the background task."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def reset(self) -> None:
        """Forget every job; the worker runs again."""
        self.jobs.clear()
        self.paused = False
        self._ids = itertools.count(1001)
