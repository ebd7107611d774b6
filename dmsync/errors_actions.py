"""``dmsync errors retry`` and ``dmsync errors export``.

``retry [--entity E] [--code C] [ID…]`` marks the matching open errors due now (see
:mod:`shared.state.error_retry`): the deployed app retries them on its next job of each stream,
with its own identity; this command only writes the state tables. ``--wait`` then watches the
rows until each is resolved or has failed again (or ``--timeout`` passes) and prints the
outcome; the exit code is then 0 only if every one was resolved.

``export [--csv|--json] [--all] [--entity E] [--output FILE]`` writes the errors for a
spreadsheet or a script (columns: :data:`shared.state.error_export.COLUMNS`).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from dmsync.state_cli import open_store, render_table, shorten
from shared.errors import ConfigurationError
from shared.state.error_export import write_csv, write_json
from shared.state.error_retry import request_retry
from shared.state.mappings import normalize_dynamics_id
from shared.state.store import StateStore
from shared.state.sync_errors import PENDING_CODE, SyncError
from shared.state.tables import DEFAULT_PREFIX


def default_instance() -> str:
    """The app's own instance id (``SYNC_INSTANCE_ID``), as the app itself defaults it."""
    return os.environ.get("SYNC_INSTANCE_ID") or "default"


def _table_prefix(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--table-prefix",
        default=DEFAULT_PREFIX,
        help=f"prefix of the state tables (default {DEFAULT_PREFIX})",
    )


def configure_retry(parser: argparse.ArgumentParser) -> None:
    """Filters, ids and the wait."""
    _table_prefix(parser)
    parser.add_argument("ids", metavar="ID", nargs="*", help="Dynamics record ids (default: all)")
    parser.add_argument("--instance", default=None, help="default: $SYNC_INSTANCE_ID or default")
    parser.add_argument("--entity", help="only this entity (its logical name)")
    parser.add_argument("--code", help="only errors with this code")
    parser.add_argument("--wait", action="store_true", help="wait and show each retry's result")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait at most")
    parser.add_argument("--poll", type=float, default=5.0, help="seconds between looks")


def configure_export(parser: argparse.ArgumentParser) -> None:
    """Format, filters and destination."""
    _table_prefix(parser)
    form = parser.add_mutually_exclusive_group()
    form.add_argument("--csv", action="store_true", help="CSV with a header row (the default)")
    form.add_argument("--json", dest="as_json", action="store_true", help="a JSON array")
    parser.add_argument("--instance", default=None, help="default: $SYNC_INSTANCE_ID or default")
    parser.add_argument("--entity", help="only this entity (its logical name)")
    parser.add_argument("--all", action="store_true", help="include resolved errors")
    parser.add_argument("--output", type=Path, help="write to this file instead of stdout")


def run_retry(args: argparse.Namespace) -> int:
    """Mark the matching errors due now; optionally wait for their outcome."""
    instance_id = args.instance or default_instance()
    store = open_store(args)
    if args.code == PENDING_CODE:
        errors = store.errors.list(instance_id, entity=args.entity, kind="pending")
    else:
        errors = store.errors.list(instance_id, entity=args.entity, kind="errors")
    if args.code:
        errors = [e for e in errors if e.code == args.code]
    wanted = {normalize_dynamics_id(i) for i in args.ids}
    if wanted:
        errors = [e for e in errors if e.dynamics_id in wanted]
        missing = wanted - {e.dynamics_id for e in errors}
        if missing:
            print(f"no open sync error for: {', '.join(sorted(missing))}", file=sys.stderr)
    if not errors:
        print(f"no open sync errors of {instance_id} match; nothing to retry")
        return 1 if wanted else 0
    marked = request_retry(store, errors)
    streams = sorted({f"{e.stream.entity} {e.stream.direction.value}" for e in marked})
    print(
        f"{len(marked)} sync errors of {instance_id} marked for retry now ({', '.join(streams)}); "
        "the app retries them on its next job of each stream (after the next timer tick)"
    )
    if len(marked) < len(errors):
        print(f"{len(errors) - len(marked)} changed meanwhile (the sync is on them) and were left")
    if not args.wait:
        return 0
    outcome = wait_for_outcomes(store, marked, timeout=args.timeout, poll=args.poll)
    print(render_table(("ENTITY", "DYNAMICS ID", "RESULT", "CODE", "MESSAGE"), outcome.rows()))
    print(outcome.summary())
    return 0 if outcome.all_resolved else 1


class RetryOutcome:
    """What became of each retried error."""

    def __init__(self, before: Sequence[SyncError], after: dict[str, SyncError | None]) -> None:
        self.before = list(before)
        self.after = after

    def result(self, error: SyncError) -> str:
        """``resolved``, ``failed again`` or ``waiting``."""
        now = self.after.get(_key(error))
        if now is None or now.resolved:
            return "resolved"
        if now.last_seen != error.last_seen:
            return "failed again"
        return "waiting"

    @property
    def done(self) -> bool:
        """No error is still waiting for its retry."""
        return all(self.result(e) != "waiting" for e in self.before)

    @property
    def all_resolved(self) -> bool:
        """Every retried error was resolved."""
        return all(self.result(e) == "resolved" for e in self.before)

    def rows(self) -> list[list[str]]:
        """One table row per error."""
        rows = []
        for error in self.before:
            now = self.after.get(_key(error)) or error
            result = self.result(error)
            code = now.code if result == "failed again" else "-"
            message = shorten(now.message, 60) if result == "failed again" else "-"
            rows.append([error.stream.entity, error.dynamics_id or "-", result, code, message])
        return rows

    def summary(self) -> str:
        """``2 resolved, 1 failed again, 0 still waiting``."""
        results = [self.result(e) for e in self.before]
        return (
            f"{results.count('resolved')} resolved, {results.count('failed again')} failed "
            f"again, {results.count('waiting')} still waiting"
        )


def wait_for_outcomes(
    store: StateStore, errors: Sequence[SyncError], *, timeout: float, poll: float
) -> RetryOutcome:
    """Look at the rows every ``poll`` seconds until none is waiting or ``timeout`` passed."""
    deadline = time.monotonic() + timeout
    while True:
        outcome = RetryOutcome(errors, _current(store, errors))
        if outcome.done or time.monotonic() >= deadline:
            return outcome
        time.sleep(max(0.05, poll))


def _current(store: StateStore, errors: Sequence[SyncError]) -> dict[str, SyncError | None]:
    found: dict[str, SyncError | None] = {}
    for error in errors:
        found[_key(error)] = store.errors.get(error.stream, error.record_id[1])
    return found


def _key(error: SyncError) -> str:
    return f"{error.stream}|{error.record_id[1]}"


def run_export(args: argparse.Namespace) -> int:
    """Write the errors as CSV (default) or JSON."""
    instance_id = args.instance or default_instance()
    errors = open_store(args).errors.list(
        instance_id, entity=args.entity, include_resolved=args.all
    )
    text = write_json(errors) + "\n" if args.as_json else write_csv(errors)
    if args.output is None:
        sys.stdout.write(text)
        return 0
    try:
        args.output.write_text(text, encoding="utf-8", newline="")
    except OSError as exc:
        raise ConfigurationError(f"--output {args.output}: {exc.strerror}") from None
    print(f"{len(errors)} sync errors of {instance_id} written to {args.output}")
    return 0
