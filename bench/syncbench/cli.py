"""``make bench`` / ``python -m bench.syncbench``: measure the sync and write ``latest.json``.

Phases (each flag below changes one):

1. start a private Azurite and both emulators as subprocesses; seed ``--contacts`` contacts and
   ``--accounts`` accounts with their owners;
2. start ``dmsync host`` on ``function_app.py`` a few seconds before a minute boundary, with the
   default one-minute timer; measure the initial sync (:mod:`.initial`);
3. make ``--changes`` contact changes over ``--change-minutes`` and measure how long each takes to
   reach Marketo (:mod:`.latency`);
4. stop the host; the same initial sync with ``--steady-contacts`` contacts on a fresh stack
   (several 20 s windows of Marketo calls);
5. kill -9 the host mid-run on a fresh stack, start another, and time how long the sync stands
   still (:mod:`.recovery`, at the real defaults);
6. run the Dataverse emulator, governor and shared-budget benchmarks (:mod:`.others`; the
   last with ``--hosts K[,K...]`` processes sharing one Marketo budget);
7. write ``bench/results/latest.json``, print the table, and put it in docs/benchmarks.md.

Exit status: 0 when the run completed (a missed target is reported, not an error: benchmarks
are not tests), 1 with ``--strict`` when a target is missed, 2 when the run itself failed.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
import traceback
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.syncbench import figures, report
from bench.syncbench.host import HostProcess
from bench.syncbench.initial import InitialResult, run_initial
from bench.syncbench.latency import LatencyResult, run_latency
from bench.syncbench.others import run_script
from bench.syncbench.procstat import children_by_role
from bench.syncbench.recovery import kill_and_recover
from bench.syncbench.stack import SeedPlan, Stack, running_stack

ENTITY_SETS = {
    "systemuser": "systemusers",
    "team": "teams",
    "account": "accounts",
    "contact": "contacts",
}
HOST_LEAD_SECONDS = 10.0
"""The host starts this long before a minute boundary: enough to load the app and announce it."""
LOG_DIR = report.REPO_ROOT / "bench" / "results"
SERVICE_ROLES = {
    "azurite": "azurite",
    "dynamics_emulator": "emulator dynamics",
    "marketo_emulator": "emulator marketo",
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m bench.syncbench", description=__doc__)
    parser.add_argument("--contacts", type=int, default=20_000, help="contacts to sync (N)")
    parser.add_argument("--accounts", type=int, default=None, help="accounts (default N / 10)")
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--teams", type=int, default=5)
    parser.add_argument("--bad-data-share", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--changes", type=int, default=200, help="0 skips the latency phase")
    parser.add_argument("--change-minutes", type=float, default=5.0)
    parser.add_argument("--timeout", type=float, default=900.0, help="initial sync limit (s)")
    parser.add_argument(
        "--steady-contacts",
        type=int,
        default=50_000,
        metavar="N",
        help="also run an initial sync of N contacts on a fresh stack (more than one 20 s "
        "window of Marketo calls), without the latency phase; 0 skips it",
    )
    parser.add_argument(
        "--recovery-contacts",
        type=int,
        default=6000,
        metavar="N",
        help="contacts of the kill -9 recovery phase (several Marketo batches, so the host "
        "dies part-way through a page); 0 skips it",
    )
    parser.add_argument("--skip-emulator-bench", action="store_true")
    parser.add_argument("--skip-governor-bench", action="store_true")
    parser.add_argument("--governor-seconds", type=float, default=70.0)
    parser.add_argument(
        "--hosts",
        default="1,2,4",
        metavar="K[,K...]",
        help="process counts for the shared-budget benchmark (bench/budget_bench.py)",
    )
    parser.add_argument("--skip-budget-bench", action="store_true")
    parser.add_argument(
        "--no-readme", action="store_true", help="do not rewrite the table in docs/benchmarks.md"
    )
    parser.add_argument("--output", type=Path, default=report.RESULTS)
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        metavar="FILE",
        help="record the host's stacks during the initial sync with py-spy (collapsed stacks; "
        "the sampling costs the host some CPU, so figures of a profiled run are not comparable)",
    )
    return parser.parse_args(argv)


def wait_for_boundary(lead: float) -> None:
    """Sleep until ``lead`` seconds before the next minute boundary (or the one after)."""
    now = datetime.now(UTC)
    into = now.second + now.microsecond / 1e6
    wait = 60.0 - lead - into
    if wait < 0:
        wait += 60.0
    time.sleep(wait)


def initial_figures(stack: Stack, initial: InitialResult) -> dict[str, Any]:
    """The initial-sync section of the report."""
    records = sum(initial.written.values())
    seconds = initial.seconds
    rate = records / seconds
    burst = figures.burst_bound(seconds)
    return {
        "measured": "from the first timer tick (announced by the host) to the moment the last "
        "stream's watermark was stored incremental (its updated_at)",
        "started_utc": initial.started_utc.isoformat(),
        "finished_utc": initial.finished_utc.isoformat(),
        "records": records,
        "records_by_entity": initial.written,
        "eligible_by_entity": stack.eligible,
        "rows_by_entity": stack.rows,
        "seconds": round(seconds, 2),
        "records_per_second": round(rate, 1),
        "burst_calls_allowed": figures.burst_calls_allowed(seconds),
        "burst_bound_records_per_second": round(burst, 1),
        "share_of_burst_bound": round(rate / burst, 4),
        "steady_bound_records_per_second": figures.STEADY_RECORDS_PER_SECOND,
        "share_of_steady_bound": round(rate / figures.STEADY_RECORDS_PER_SECOND, 4),
        "cpu_seconds": round(initial.cpu_seconds, 3),
        "cpu_us_per_record": round(1e6 * initial.cpu_seconds / records, 1),
        "cpu_us_per_row_read": round(1e6 * initial.cpu_seconds / sum(stack.rows.values()), 1),
        "cpu_measured": "utime + stime of the host process (/proc/<pid>/stat fields 14-15, "
        "its threads only), sampled every 0.1 s and interpolated at both moments",
        "peak_rss_mb": round(initial.peak_rss_kb / 1024, 1),
        "peak_rss_measured": "VmHWM of /proc/<pid>/status: the host process's peak resident "
        "set since it started (app load included)",
        "marketo": report.marketo_figures(initial.marketo_usage, initial.written),
        "dynamics": report.dynamics_figures(initial.dynamics_requests, stack.rows, ENTITY_SETS),
        "cpu_seconds_by_process": {
            "host": round(initial.cpu_seconds, 2),
            **initial.process_cpu_seconds,
        },
        "jobs": {
            "count": len(initial.job_durations_ms),
            "durations_ms": initial.job_durations_ms,
        },
        "watermarks": initial.watermarks,
    }


def latency_figures(latency: LatencyResult, initial: InitialResult) -> dict[str, Any]:
    """The incremental-latency section of the report."""
    values = latency.latencies
    found: dict[str, Any] = {
        "measured": "from sending the PATCH to the first poll of the Marketo emulator's control "
        "API showing the new value (polled every 0.5 s in the 25 s after each minute boundary, "
        "every 2 s otherwise)",
        "timer": "0 */1 * * * * (default SYNC_SCHEDULE)",
        "changes": len(latency.changes),
        "span_seconds": latency.span_seconds,
        "missing": latency.missing,
        "marketo_calls": report.subtract(latency.marketo_usage, initial.marketo_usage),
        "dynamics_calls": report.subtract(
            {k: v for k, v in latency.dynamics_requests.items() if k != "by_path"},
            initial.dynamics_requests,
        ),
    }
    if values:
        found.update(
            {
                "p50_seconds": round(figures.percentile(values, 0.50), 2),
                "p95_seconds": round(figures.percentile(values, 0.95), 2),
                "max_seconds": round(max(values), 2),
                "min_seconds": round(min(values), 2),
            }
        )
    return found


def seed_plan(args: argparse.Namespace, contacts: int) -> SeedPlan:
    """What to seed for ``contacts`` contacts (accounts a tenth unless given)."""
    accounts = args.accounts if args.accounts is not None else max(1, contacts // 10)
    return SeedPlan(
        contacts=contacts,
        accounts=accounts,
        users=args.users,
        teams=args.teams,
        seed=args.seed,
        bad_data_share=args.bad_data_share,
    )


def run_scenario(
    plan: SeedPlan, args: argparse.Namespace, *, latency_changes: int, log_name: str
) -> dict[str, Any]:
    """One fresh stack and host: the initial sync, then (if asked) the latency phase."""
    found: dict[str, Any] = {}
    print(f"seeding {plan.contacts:,} contacts and {plan.accounts:,} accounts ...", flush=True)
    with (
        tempfile.TemporaryDirectory(prefix="dmsync-bench-") as folder,
        running_stack(plan) as stack,
    ):
        print(f"seeded: {stack.rows} (eligible {stack.eligible})", flush=True)
        wait_for_boundary(HOST_LEAD_SECONDS)
        services = children_by_role(os.getpid(), SERVICE_ROLES)
        host = HostProcess(stack.app_settings(), Path(folder), LOG_DIR / log_name, others=services)
        try:
            print("host started; waiting for the first tick and the initial sync ...", flush=True)
            profiler = host.start_profiler(args.profile) if args.profile else None
            try:
                initial = run_initial(stack, host, args.timeout)
            finally:
                if profiler is not None:
                    host.stop_profiler(profiler)
            found["initial_sync"] = initial_figures(stack, initial)
            section = found["initial_sync"]
            print(
                f"initial sync: {section['records']:,} records in {section['seconds']:.1f} s, "
                f"{section['records_per_second']:,.0f}/s, {section['cpu_us_per_record']:.0f} µs "
                f"CPU/record, peak {section['peak_rss_mb']:.0f} MB",
                flush=True,
            )
            if latency_changes:
                print(
                    f"latency: {latency_changes} changes over {args.change_minutes:g} min ...",
                    flush=True,
                )
                latency = run_latency(stack, latency_changes, args.change_minutes * 60, args.seed)
                found["incremental_latency"] = latency_figures(latency, initial)
            found["host_peak_rss_mb_whole_run"] = round(host.peak_rss_kb() / 1024, 1)
        finally:
            found["host_exit_status"] = host.stop()
    return found


def run_recovery(plan: SeedPlan) -> dict[str, Any]:
    """Phase 5: the kill -9 scenario at the app's default settings."""
    with (
        tempfile.TemporaryDirectory(prefix="dmsync-bench-") as folder,
        running_stack(plan) as stack,
    ):
        result = kill_and_recover(stack, Path(folder), LOG_DIR)
        return {
            "contacts": plan.contacts,
            "settings": "SYNC_SCHEDULE every minute, SYNC_RECOVERY_SECONDS 90 (defaults)",
            **asdict(result),
            "eligible_contacts": stack.eligible["contact"],
        }


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Every phase; returns the assembled (unfinished) result."""
    plan = seed_plan(args, args.contacts)
    result: dict[str, Any] = {
        "parameters": {
            "contacts": plan.contacts,
            "accounts": plan.accounts,
            "users": plan.users,
            "teams": plan.teams,
            "bad_data_share": plan.bad_data_share,
            "seed": plan.seed,
            "changes": args.changes,
            "change_minutes": args.change_minutes,
            "steady_contacts": args.steady_contacts,
            "mapping": "bench/syncbench/contacts_accounts.toml (systemuser, team, account, "
            "contact as in the default mapping)",
            "marketo_limits": "emulator defaults: 100 calls / 20 s, 10 concurrent, 50,000 a day",
            "governor": "MARKETO_CALLS_PER_20S=100, MARKETO_MAX_CONCURRENCY=5 (default)",
            "page_size": 5000,
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        }
    }
    started = time.monotonic()
    result.update(run_scenario(plan, args, latency_changes=args.changes, log_name="host.log.tmp"))
    if args.steady_contacts:
        print("larger run, for the steady state ...", flush=True)
        steady = run_scenario(
            seed_plan(args, args.steady_contacts),
            args,
            latency_changes=0,
            log_name="host-steady.log.tmp",
        )
        result["steady_state"] = steady["initial_sync"]
    if args.recovery_contacts:
        print("recovery after kill -9 ...", flush=True)
        result["recovery_after_kill"] = run_recovery(seed_plan(args, args.recovery_contacts))
        print(f"recovery: {result['recovery_after_kill']}", flush=True)
    if not args.skip_emulator_bench:
        print("Dataverse emulator benchmark ...", flush=True)
        result["dynamics_emulator_bench"] = run_script("dynamics_emulator_bench.py")
    if not args.skip_governor_bench:
        print("governor benchmark ...", flush=True)
        result["governor_bench"] = run_script(
            "governor_bench.py", "--seconds", str(args.governor_seconds)
        )
    if not args.skip_budget_bench:
        print(f"shared-budget benchmark, {args.hosts} process(es) ...", flush=True)
        result["shared_budget_bench"] = run_script("budget_bench.py", "--hosts", args.hosts)
    result["bench_seconds"] = round(time.monotonic() - started, 1)
    return result


def main(argv: list[str] | None = None) -> int:
    """Run, report, and say whether every target holds."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    try:
        raw = run(args)
    except Exception:
        traceback.print_exc()
        print("bench: the run failed (host log: bench/results/host.log.tmp)", file=sys.stderr)
        return 2
    result = report.finish(raw)
    report.write(result, args.output)
    print()
    print(report.table(result))
    print()
    for name in ("dynamics_emulator_bench", "governor_bench", "shared_budget_bench"):
        if name in result:
            print(f"{name}: {result[name]['verdict']}")
    if not args.no_readme and report.update_readme(result):
        print("docs/benchmarks.md: Benchmarks table updated")
    print(f"results: {args.output}")
    if not result["all_targets_pass"]:
        missed = [name for name, check in result["targets"].items() if not check["pass"]]
        print(f"targets missed: {', '.join(missed)}")
        return 1 if args.strict else 0
    return 0
