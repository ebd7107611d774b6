"""``dmsync resync ENTITY…``: a full copy of some entities, carried out by the deployed app.

The request is written to the state tables (:mod:`shared.sync.resync_request`); the app's next
timer tick starts each entity's full read in dependency order, and the rest of the sync goes
on. ``--wait`` shows each entity's progress until its read and the check for deletes made
meanwhile are done (or ``--timeout`` passes: the exit code is then 1).

Needs ``AzureWebJobsStorage`` (an identity-based one signs in as you) and the mapping
(``SYNC_MAPPING_FILE``, default the shipped one), nothing else.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from dmsync.errors_actions import default_instance
from dmsync.state_cli import open_store
from shared.state.store import StateStore
from shared.state.tables import DEFAULT_PREFIX
from shared.state.watermarks import Phase, Watermark
from shared.sync.resync_request import ResyncRequest, ResyncState, request_resync, resync_done


def configure(parser: argparse.ArgumentParser) -> None:
    """Entities, instance, wait."""
    parser.add_argument(
        "entities", metavar="ENTITY", nargs="+", help="entity names (the mapping's)"
    )
    parser.add_argument("--instance", default=None, help="default: $SYNC_INSTANCE_ID or default")
    parser.add_argument("--wait", action="store_true", help="show progress until it is done")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait at most")
    parser.add_argument("--poll", type=float, default=5.0, help="seconds between looks")
    parser.add_argument(
        "--table-prefix",
        default=DEFAULT_PREFIX,
        help=f"prefix of the state tables (default {DEFAULT_PREFIX})",
    )


def run(args: argparse.Namespace) -> int:
    """Record the requests; optionally follow them."""
    from shared.settings import SyncSettings, load
    from shared.sync.config import load_config

    config = load_config(load(SyncSettings).mapping_file)
    store = open_store(args)
    instance_id = args.instance or default_instance()
    requests = asyncio.run(request_resync(store, config, instance_id, args.entities))
    for request in requests:
        print(_requested_line(request))
    started = [r for r in requests if r.state is not ResyncState.FIRST_COPY]
    if not args.wait or not started:
        return 0
    return 0 if follow(store, started, timeout=args.timeout, poll=args.poll) else 1


def _requested_line(request: ResyncRequest) -> str:
    entity, where = request.stream.entity, progress(request.watermark)
    if request.state is ResyncState.REQUESTED:
        return f"{entity}: full resync requested; the app starts it on its next timer tick"
    if request.state is ResyncState.ALREADY_RUNNING:
        return f"{entity}: a full resync is already under way ({where}); left as it is"
    return f"{entity}: its first copy is still under way ({where}); nothing to resync"


def progress(mark: Watermark) -> str:
    """``read 1200/5000 (24%)``, ``checking for deletes``, ``waiting for the next tick``."""
    if not mark.run_open and mark.phase is Phase.INITIAL and mark.counts.read == 0:
        return "waiting for the next tick"
    if mark.sweep is not None:
        return f"read {mark.counts.read}; checking for records deleted meanwhile"
    done, total = mark.progress
    if total:
        return f"read {done}/{total} ({min(100.0, 100.0 * done / total):.0f}%)"
    return f"read {done}"


def follow(
    store: StateStore, requests: list[ResyncRequest], *, timeout: float, poll: float
) -> bool:
    """Print each entity's progress when it changes, until all are done; whether they were."""
    deadline = time.monotonic() + timeout
    shown: dict[str, str] = {}
    pending = {r.stream.entity: r for r in requests}
    while pending:
        for entity, request in list(pending.items()):
            now = store.watermarks.get(request.stream)
            if resync_done(request.watermark, now):
                print(f"{entity}: resync complete: {now.counts.read} records read; up to date")
                del pending[entity]
                continue
            line = progress(now)
            if shown.get(entity) != line:
                print(f"{entity}: {line}", flush=True)
                shown[entity] = line
        if not pending:
            return True
        if time.monotonic() >= deadline:
            print(
                f"still running after {timeout:.0f} s: {', '.join(pending)} "
                "(is the app running? `dmsync status` shows its streams)"
            )
            return False
        time.sleep(max(0.05, poll))
    return True
