"""``dmsync status [INSTANCE]``: per instance and stream, where the sync stands.

By default one table a person reads at a glance (:mod:`dmsync.status_view`: phase, records in
the last hour, backlog, how long behind, a catch-up estimate, errors, last run). ``--details``:
watermark age (time since it last advanced), record counters, progress of the initial load
(done/total), last run and last success, who holds the stream's lease, and open errors.
``--json`` prints both as data. Then the API budgets every process of the app shares (calls
in the current window, in flight, today's count against the daily budget, when a stop ends).
"""

from __future__ import annotations

import argparse
import time
from datetime import datetime

from dmsync import status_view
from dmsync.state_cli import (
    add_store_options,
    format_age,
    format_time,
    open_store,
    print_json,
    render_table,
    shorten,
)
from shared.budget.spec import BudgetSpec
from shared.budget.usage import BudgetUsage, usage_of
from shared.marketo.shared_governor import marketo_day, marketo_day_end
from shared.state.budgets import BudgetRow
from shared.state.glance import StreamGlance, glance
from shared.state.status import InstanceReport, StreamStatus
from shared.state.store import StateStore

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
    parser.add_argument(
        "--details",
        action="store_true",
        help="every counter, the lease and progress instead of the at-a-glance table",
    )


_BUDGET_HEADERS = ("API", "BUDGET", "IN WINDOW", "IN FLIGHT", "TODAY", "PROCESSES", "STOPPED UNTIL")


def run(args: argparse.Namespace) -> int:
    """Print the report: the at-a-glance table (:mod:`dmsync.status_view`), or ``--details``."""
    store = open_store(args)
    reports = store.status(args.instance_id)
    now = store.clock.now()
    sections = [(r, glance_rows(store, r, now)) for r in reports]
    if args.json:
        print_json([{**r.to_json(), "glance": [g.to_json() for g in rows]} for r, rows in sections])
        return 0
    if not reports:
        print("no instances and no sync state yet")
    elif args.details:
        print("\n\n".join(_render(r) for r in reports))
    else:
        status_view.show(sections, now)
    budgets = [u for u in (budget_usage(row, time.time()) for row in store.budgets.list()) if u]
    if budgets:
        print("\nAPI budgets (all processes of the app together)")
        print(render_table(_BUDGET_HEADERS, [_budget_row(u) for u in budgets]))
    return 0


def glance_rows(store: StateStore, report: InstanceReport, now: datetime) -> list[StreamGlance]:
    """The at-a-glance rows of one instance's streams."""
    marks = {w.stream: w for w in store.watermarks.list(report.instance_id)}
    return [glance(s, marks.get(s.stream), now) for s in report.streams]


def budget_usage(row: BudgetRow, now: float) -> BudgetUsage | None:
    """A stored budget's use at ``now`` (``None`` for a row written without its limits)."""
    if row.limits is None:
        return None
    if row.system == "marketo":
        spec = BudgetSpec(row.key, row.system, row.limits, marketo_day, marketo_day_end)
    else:
        spec = BudgetSpec(row.key, row.system or "?", row.limits)
    return usage_of(row.ledger, spec, now)


def _budget_row(usage: BudgetUsage) -> list[str]:
    window = f"{usage.window_seconds:g} s"
    today = "-" if usage.daily_budget is None else f"{usage.day_used}/{usage.daily_budget}"
    return [
        usage.system,
        f"{usage.calls_per_window}/{window}, {usage.max_concurrency} at once",
        f"{usage.calls_in_window}/{usage.calls_per_window}",
        f"{usage.in_flight}/{usage.max_concurrency}",
        today,
        str(usage.processes),
        format_time(usage.stopped_until),
    ]


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
