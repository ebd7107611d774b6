"""Sustained load through the Marketo rate governor against the emulator at Marketo's real limits.

The emulator runs as a subprocess with its default limits: 100 calls per sliding 20 s, 10
concurrent calls, 50,000 a day (reference B.2). The client is governed at the full instance
share (``calls_per_20s=100``, ``max_concurrency=10``) and driven by more workers than it may
run at once, each alternating a 5-lead Sync Leads and a 5-value Get Leads by Filter Type, for
``--seconds`` of wall-clock time. The governor must keep every 20 s window at or under 100 calls
without Marketo answering a single 606 (or 615).

Reported: calls made, throughput, the busiest 20 s window as sent by the client and as counted
by the emulator, calls per consecutive 20 s window, 606/615 counts on both sides, time callers
spent waiting in the governor. Exits non-zero on any 606 or a window over 100.

``--latency-ms MIN MAX`` makes the emulator take that long per call, so calls overlap and the
concurrency limit (10) is exercised too.

Usage: ``.venv/bin/python bench/governor_bench.py [--seconds 70] [--workers 16]
[--latency-ms 200 1500] [--json out.json]``
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from emulators.marketo.runner import run_marketo_emulator
from shared.marketo import Governor, Limits, MarketoClient
from shared.marketo.governor import max_calls_in_any_window
from shared.settings import MarketoSettings, load

INSTANCE_RATE = 100
WINDOW = 20.0


class RecordingTransport(httpx.AsyncBaseTransport):
    """Notes the moment every REST call leaves (identity calls are not rate limited)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.sends: list[float] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not request.url.path.startswith("/identity"):
            self.sends.append(time.monotonic())
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def worker(
    client: MarketoClient, number: int, deadline: float, counter: itertools.count[int]
) -> int:
    """Alternate a small sync and a small query until ``deadline``; returns operations done."""
    done = 0
    while time.monotonic() < deadline:
        batch = [f"w{number}-{next(counter)}@bench.example.com" for _ in range(5)]
        if done % 2 == 0:
            await client.leads.sync([{"email": e, "firstName": "Bench"} for e in batch])
        else:
            await client.leads.get_by_filter("email", batch, fields=["id", "email"])
        done += 1
    return done


def windows(sends: list[float], start: float) -> list[int]:
    """Calls sent in each consecutive 20 s window from ``start``."""
    if not sends:
        return []
    counts = [0] * (int((max(sends) - start) // WINDOW) + 1)
    for sent in sends:
        counts[int((sent - start) // WINDOW)] += 1
    return counts


async def run(
    seconds: float, workers: int, base_url: str, client_id: str, secret: str
) -> dict[str, Any]:
    """Drive the load; return the client-side measurements."""
    settings = load(
        MarketoSettings,
        {
            "MARKETO_BASE_URL": base_url,
            "MARKETO_CLIENT_ID": client_id,
            "MARKETO_CLIENT_SECRET": secret,
            "MARKETO_CALLS_PER_20S": str(INSTANCE_RATE),
            "MARKETO_MAX_CONCURRENCY": "10",
            "MARKETO_DAILY_CALL_BUDGET": "50000",
        },
    )
    recorder = RecordingTransport(
        httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=12), retries=0)
    )
    governor = Governor(Limits.from_settings(settings))
    counter = itertools.count()
    async with MarketoClient(settings, transport=recorder, governor=governor) as client:
        started = time.monotonic()
        deadline = started + seconds
        operations = await asyncio.gather(
            *(worker(client, n, deadline, counter) for n in range(workers))
        )
        elapsed = time.monotonic() - started
        stats = client.stats.snapshot()
    return {
        "seconds": round(elapsed, 1),
        "workers": workers,
        "operations": sum(operations),
        "calls_sent": len(recorder.sends),
        "calls_per_second": round(len(recorder.sends) / elapsed, 2),
        "max_calls_in_any_20s_window_sent": max_calls_in_any_window(recorder.sends, WINDOW),
        "calls_per_consecutive_20s_window": windows(recorder.sends, started),
        "client_stats": stats,
    }


def main() -> int:
    """Run the benchmark, print and optionally save the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=70.0)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--latency-ms", type=float, nargs=2, default=None, metavar=("MIN", "MAX"))
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    with run_marketo_emulator(mode="subprocess") as mkto:
        print(f"emulator limits: {json.dumps(mkto.control.limits())}", flush=True)
        if args.latency_ms:  # calls that take a while, so the concurrency limit is exercised
            mkto.control.set_faults(latency_ms=tuple(args.latency_ms), paths=["/rest"])
        result = asyncio.run(
            run(args.seconds, args.workers, mkto.base_url, mkto.client_id, mkto.client_secret)
        )
        usage = mkto.control.usage()
    result["emulator_latency_ms"] = args.latency_ms
    result["emulator"] = {
        "requests": usage.requests,
        "max_calls_in_window": usage.max_calls_in_window,
        "max_concurrency": usage.max_concurrency,
        "errors": usage.errors,
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
    refused = usage.errors.get("606", 0) + usage.errors.get("615", 0)
    busiest = max(result["max_calls_in_any_20s_window_sent"], usage.max_calls_in_window)
    if refused or busiest > INSTANCE_RATE:
        print(f"FAIL: {refused} calls refused, busiest window {busiest}", file=sys.stderr)
        return 1
    print(f"OK: no 606/615, busiest 20 s window {busiest} <= {INSTANCE_RATE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
