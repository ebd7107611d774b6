"""``dmsync status [INSTANCE]``: per instance and stream, where the sync stands.

Phase, watermark age (time since it last advanced), record counters, progress of the initial
load (done/total), last run and last success, who holds the stream's lease, and how many sync
errors are open. ``--json`` prints the same as data.
"""

from __future__ import annotations

import argparse

from dmsync.state_cli import (
    add_store_options,
    format_age,
    format_time,
    open_store,
    print_json,
    render_table,
    shorten,
)
from shared.state.status import InstanceReport, StreamStatus

_HEADERS = (
    "ENTITY",
    "DIR",
    "PHASE",
    "AGE",
    "READ",
    "WRITTEN",
    "SKIPPED",
    "FAILED",
    "PROGRESS",
    "BACKLOG",
    "LAST RUN",
    "LAST SUCCESS",
    "LEASE",
    "ERRORS",
    "PENDING",
    "NOTE",
)


def configure(parser: argparse.ArgumentParser) -> None:
    """An optional instance id and the output options."""
    add_store_options(parser)
    parser.add_argument("instance_id", metavar="INSTANCE", nargs="?", help="only this instance")


def run(args: argparse.Namespace) -> int:
    """Print the report."""
    reports = open_store(args).status(args.instance_id)
    if args.json:
        print_json([r.to_json() for r in reports])
        return 0
    if not reports:
        print("no instances and no sync state yet")
        return 0
    print("\n\n".join(_render(r) for r in reports))
    return 0


def _render(report: InstanceReport) -> str:
    instance = report.instance
    if instance is None:
        title = f"instance {report.instance_id} (not registered)"
    else:
        integrated = (
            "integrated with Dynamics" if instance.integrated_with_dynamics else "not integrated"
        )
        reason = f": {instance.status_reason}" if instance.status_reason else ""
        title = f"instance {report.instance_id} ({instance.status.value}{reason}; {integrated})"
    if not report.streams:
        return f"{title}\n  no streams have run yet"
    return title + "\n" + render_table(_HEADERS, [_row(s) for s in report.streams])


def _row(stream: StreamStatus) -> list[str]:
    return [
        stream.stream.entity,
        stream.stream.direction.value,
        stream.phase.value if stream.phase else "-",
        format_age(stream.watermark_age_seconds),
        str(stream.counts.read),
        str(stream.counts.written),
        str(stream.counts.skipped),
        str(stream.counts.failed),
        _progress(stream.progress_done, stream.progress_total),
        "?" if stream.backlog is None else str(stream.backlog),
        format_time(stream.last_run_at),
        format_time(stream.last_success_at),
        shorten(stream.lease_holder, 30),
        str(stream.open_errors),
        str(stream.pending_links),
        shorten(stream.last_error or stream.note, 48),
    ]


def _progress(done: int, total: int | None) -> str:
    if total is None:
        return f"{done}/?"
    if total <= 0:
        return f"{done}/{total}"
    return f"{done}/{total} ({min(100.0, 100.0 * done / total):.0f}%)"
