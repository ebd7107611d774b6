"""K processes sharing one Marketo budget through Table Storage, against the emulator's real limits.

For each K in ``--hosts`` (default 1, 2, 4): K worker processes, each a ``SharedGovernor`` on
the same budget row in one Azurite and a ``MarketoClient``, each driving ``--workers`` callers
that alternate a 5-lead Sync Leads and a 5-value Get Leads by Filter Type for ``--seconds``.
The app's share is the default: ``MARKETO_CALLS_PER_20S=50``, ``MARKETO_MAX_CONCURRENCY=5``.
The Marketo emulator runs with its default, real limits (100 / 20 s, 10 concurrent).

Reported per K: calls, calls per second, leads written per second, the share used (calls per
20 s against the share, over the whole windows after the first, whose burst is left out;
process start-up is inside the first), the busiest 20 s
window and the most calls at once as the emulator counted them, 606/615 answers, storage
operations per 1,000 Marketo calls (every read and write of the budget row, counted by each
process), and calls per process (fairness). Exits non-zero on a 606/615 or a window over the
share.

Usage: ``.venv/bin/python bench/budget_bench.py [--hosts 1,2,4] [--seconds 60] [--json out]``
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from emulators.azurite import run_azurite
from emulators.marketo.runner import run_marketo_emulator
from shared.marketo import MarketoClient
from shared.marketo.shared_governor import SharedGovernor
from shared.settings import MarketoSettings, load
from shared.state.store import StateStore
from shared.storage import StorageConnection

SHARE, CONCURRENCY = 50, 5
REPO = Path(__file__).resolve().parents[1]


async def caller(
    client: MarketoClient, number: int, deadline: float, tag: str, done: list[float]
) -> int:
    """Alternate a small sync and a small query until ``deadline``; leads written. Appends
    each call's end (epoch seconds) to ``done``."""
    counter = itertools.count()
    written = 0
    for turn in itertools.count():
        if time.monotonic() >= deadline:
            break
        batch = [f"{tag}-{number}-{next(counter)}@bench.example.com" for _ in range(5)]
        if turn % 2 == 0:
            await client.leads.sync([{"email": e, "firstName": "Bench"} for e in batch])
            written += len(batch)
        else:
            await client.leads.get_by_filter("email", batch, fields=["id", "email"])
        done.append(time.time())
    return written


async def work(
    environ: dict[str, str], prefix: str, seconds: float, callers: int
) -> dict[str, Any]:
    """One process: its governor on the shared row, its callers, its counts."""
    settings = load(MarketoSettings, environ)
    store = StateStore.from_connection(
        StorageConnection.from_connection_string(environ["AzureWebJobsStorage"]),
        table_prefix=prefix,
    )
    governor = SharedGovernor(settings, store.budgets)
    tag = uuid.uuid4().hex[:6]
    async with MarketoClient(settings, governor=governor) as client:
        deadline = time.monotonic() + seconds
        done: list[float] = []
        written = await asyncio.gather(
            *(caller(client, n, deadline, tag, done) for n in range(callers))
        )
        await governor.aclose()
    holder = governor.holder
    return {
        "calls": holder.calls,
        "leads_written": sum(written),
        "storage_operations": store.budgets.operations,
        "transactions": holder.transactions,
        "conflicts": holder.conflicts,
        "call_ends": done,
    }


def steady_rate(ends: list[float], start: float, window: float = 20.0) -> float:
    """Calls per ``window`` over the whole windows after the first (its burst left out)."""
    whole = int((max(ends, default=start) - start) // window)
    if whole < 2:
        return 0.0
    counted = sum(1 for t in ends if start + window <= t < start + whole * window)
    return counted / (whole - 1)


def run_hosts(
    hosts: int, seconds: float, callers: int, environ: dict[str, str], marketo: Any
) -> dict[str, Any]:
    """K worker processes at once on a fresh table prefix; the emulator's view of them."""
    prefix = "bench" + uuid.uuid4().hex[:8]
    marketo.control.reset_usage()
    command = [sys.executable, __file__, "--worker", prefix, "--seconds", str(seconds),
               "--workers", str(callers)]  # fmt: skip
    started = time.monotonic()
    wall_start = time.time()
    processes = [
        subprocess.Popen(command, cwd=REPO, env=environ, stdout=subprocess.PIPE, text=True)
        for _ in range(hosts)
    ]
    results = [json.loads(p.communicate(timeout=seconds + 120)[0]) for p in processes]
    elapsed = time.monotonic() - started
    usage = marketo.control.usage()
    calls = sum(r["calls"] for r in results)
    operations = sum(r["storage_operations"] for r in results)
    return {
        "hosts": hosts,
        "seconds": round(elapsed, 1),
        "calls": calls,
        "calls_per_second": round(calls / seconds, 2),
        "leads_written_per_second": round(sum(r["leads_written"] for r in results) / seconds, 1),
        "share_used": round(
            steady_rate([t for r in results for t in r["call_ends"]], wall_start) / SHARE, 3
        ),
        "busiest_20s_window_counted": usage.max_calls_in_window,
        "most_calls_at_once_counted": usage.max_concurrency,
        "errors_606": usage.errors.get("606", 0),
        "errors_615": usage.errors.get("615", 0),
        "storage_operations": operations,
        "storage_operations_per_1000_calls": round(1000 * operations / max(calls, 1), 1),
        "transactions": sum(r["transactions"] for r in results),
        "conflicts": sum(r["conflicts"] for r in results),
        "calls_per_process": [r["calls"] for r in results],
    }


def main() -> int:
    """Run every K, print and optionally save the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", default="1,2,4", help="comma-separated process counts")
    parser.add_argument("--seconds", type=float, default=80.0)
    parser.add_argument("--workers", type=int, default=8, help="callers per process")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        environ = dict(__import__("os").environ)
        print(json.dumps(asyncio.run(work(environ, args.worker, args.seconds, args.workers))))
        return 0
    counts = [int(k) for k in args.hosts.split(",") if k.strip()]
    runs = []
    with run_azurite() as azurite, run_marketo_emulator(mode="subprocess") as marketo:
        environ = {
            **__import__("os").environ,
            "PYTHONPATH": str(REPO),
            "AzureWebJobsStorage": azurite.connection_string,
            "MARKETO_BASE_URL": marketo.base_url,
            "MARKETO_CLIENT_ID": marketo.client_id,
            "MARKETO_CLIENT_SECRET": marketo.client_secret,
            "MARKETO_CALLS_PER_20S": str(SHARE),
            "MARKETO_MAX_CONCURRENCY": str(CONCURRENCY),
            "MARKETO_DAILY_CALL_BUDGET": "50000",
        }
        for hosts in counts:
            print(f"{hosts} process(es) ...", flush=True)
            runs.append(run_hosts(hosts, args.seconds, args.workers, environ, marketo))
    result = {"share": {"calls_per_20s": SHARE, "max_concurrency": CONCURRENCY}, "runs": runs}
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    bad = [
        r for r in runs
        if r["errors_606"] or r["errors_615"] or r["busiest_20s_window_counted"] > SHARE
    ]  # fmt: skip
    verdict = ", ".join(
        f"K={r['hosts']}: {r['share_used']:.0%} of the share, "
        f"{r['storage_operations_per_1000_calls']} storage ops / 1,000 calls"
        for r in runs
    )
    print(("FAIL: " if bad else "ok: ") + verdict)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
