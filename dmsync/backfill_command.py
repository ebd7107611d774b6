"""``dmsync backfill ENTITY FIELD [--include-empty] [--modified-since DATE]``: Quick Sync.

Sends one mapped field's current Dynamics value to Marketo for every mapped record of the
entity, and nothing else: no full resync, no other field touched. The request is recorded in the
state tables and its first job put on the app's queue; the deployed app does the work with its
own identity, inside the Marketo budget its governor keeps, one page (300 records) per job, and
a crash resumes at the last committed page. ``--wait`` shows progress until it is done.

Needs ``AzureWebJobsStorage`` (an identity-based one signs in as you) and the mapping
(``SYNC_MAPPING_FILE``, default the shipped one).
"""

from __future__ import annotations

import argparse
import asyncio
import time

from dmsync.errors_actions import default_instance
from dmsync.state_cli import parse_time
from shared.clock import SYSTEM_CLOCK
from shared.errors import ConfigurationError
from shared.jobs import SYNC_JOBS_QUEUE, Direction
from shared.state.backfills import Backfill
from shared.state.store import StateStore
from shared.state.streams import StreamId
from shared.state.tables import DEFAULT_PREFIX


def configure(parser: argparse.ArgumentParser) -> None:
    """Entity, field, filters, wait."""
    parser.add_argument("entity", metavar="ENTITY", help="the entity (its name in the mapping)")
    parser.add_argument("field", metavar="FIELD", help="its Dynamics column or Marketo field")
    parser.add_argument("--include-empty", action="store_true", help="send empty values too")
    parser.add_argument(
        "--modified-since", help="only records modified since: 30m, 2h, 7d or an ISO time"
    )
    parser.add_argument("--restart", action="store_true", help="start over if one is running")
    parser.add_argument("--instance", default=None, help="default: $SYNC_INSTANCE_ID or default")
    parser.add_argument("--wait", action="store_true", help="show progress until it is done")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait at most")
    parser.add_argument("--poll", type=float, default=5.0, help="seconds between looks")
    parser.add_argument("--queue", default=SYNC_JOBS_QUEUE, help=argparse.SUPPRESS)
    parser.add_argument(
        "--table-prefix",
        default=DEFAULT_PREFIX,
        help=f"prefix of the state tables (default {DEFAULT_PREFIX})",
    )


def run(args: argparse.Namespace) -> int:
    """Record the request, send its first job, optionally follow it."""
    from shared.settings import StorageSettings, SyncSettings, load
    from shared.storage import StorageConnection
    from shared.sync.backfill_request import request_backfill
    from shared.sync.config import load_config
    from shared.sync.job_queue import StorageJobQueue

    since = None
    if args.modified_since:
        try:
            since = parse_time(args.modified_since, SYSTEM_CLOCK.now())
        except argparse.ArgumentTypeError as exc:
            raise ConfigurationError(f"--modified-since: {exc}") from None
    config = load_config(load(SyncSettings).mapping_file)
    connection = StorageConnection.from_settings(load(StorageSettings))
    store = StateStore.from_connection(connection, table_prefix=args.table_prefix)
    stream = StreamId(
        args.instance or default_instance(), args.entity, Direction.DYNAMICS_TO_MARKETO
    )
    requested = asyncio.run(
        request_backfill(
            store,
            StorageJobQueue(connection, args.queue),
            config,
            stream,
            args.field,
            include_empty=args.include_empty,
            modified_since=since,
            restart=args.restart,
        )
    )
    backfill = requested.backfill
    what = f"{args.entity}.{backfill.column} → {requested.marketo_field}"
    if requested.started:
        print(f"back-fill of {what} requested; the app sends it page by page")
    else:
        print(f"a back-fill of {stream.entity}.{backfill.column} is already under way "
              f"({progress(backfill)}); --restart starts it over")  # fmt: skip
    if not args.wait:
        return 0
    return 0 if follow(store, backfill, timeout=args.timeout, poll=args.poll) else 1


def progress(backfill: Backfill) -> str:
    """``scanned 600: sent 580, 20 empty, 0 older, 0 failed``."""
    c = backfill.counts
    return (
        f"scanned {c.scanned}: sent {c.sent}, {c.empty} empty, {c.older} older, {c.failed} failed"
    )


def follow(store: StateStore, started: Backfill, *, timeout: float, poll: float) -> bool:
    """Print progress when it changes until the request is done; whether it was."""
    deadline = time.monotonic() + timeout
    shown = ""
    while True:
        now = store.backfills.get(started.stream)
        if now is None or now.sequence != started.sequence:
            print("the request was replaced by a newer one")
            return False
        line = progress(now)
        if not now.open:
            print(f"back-fill complete: {line}")
            return now.counts.failed == 0
        if line != shown:
            print(line, flush=True)
            shown = line
        if time.monotonic() >= deadline:
            print(f"still running after {timeout:.0f} s (is the app running? `dmsync status`)")
            return False
        time.sleep(max(0.05, poll))
