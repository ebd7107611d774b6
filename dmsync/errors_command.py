"""``dmsync errors [list] INSTANCE``, ``errors retry``, ``errors export``: the sync errors.

``list`` (the default action: ``dmsync errors INSTANCE``) shows an instance's errors, newest
first: open errors only unless ``--all``; ``--entity`` and ``--since``/``--until`` (``30m``,
``2h``, ``7d`` or an ISO-8601 time) narrow the list; ``--json`` prints every field, untruncated.
``retry`` and ``export``: see :mod:`dmsync.errors_actions`.
"""

from __future__ import annotations

import argparse

from dmsync import errors_actions
from dmsync.state_cli import (
    add_store_options,
    format_time,
    open_store,
    parse_time,
    print_json,
    render_table,
    shorten,
)
from shared.clock import SYSTEM_CLOCK
from shared.errors import ConfigurationError
from shared.state.error_export import export_row
from shared.state.sync_errors import SyncError

_HEADERS = (
    "LAST SEEN",
    "ENTITY",
    "DIR",
    "OPERATION",
    "DYNAMICS ID",
    "MARKETO ID",
    "CODE",
    "ATTEMPTS",
    "NEXT RETRY",
    "MESSAGE",
)


ACTIONS = ("list", "retry", "export")
DEFAULT_ACTION = "list"
"""``dmsync errors INSTANCE`` means ``dmsync errors list INSTANCE`` (see :mod:`dmsync.cli`)."""


def configure(parser: argparse.ArgumentParser) -> None:
    """The actions: ``list`` (default), ``retry``, ``export``."""
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    configure_list(actions.add_parser("list", help="list the errors of an instance"))
    retry = actions.add_parser("retry", help="retry errors now (the app does it on its next job)")
    errors_actions.configure_retry(retry)
    export = actions.add_parser("export", help="write the errors as CSV or JSON")
    errors_actions.configure_export(export)


def run(args: argparse.Namespace) -> int:
    """Run the chosen action."""
    if args.action == "retry":
        return errors_actions.run_retry(args)
    if args.action == "export":
        return errors_actions.run_export(args)
    return run_list(args)


def configure_list(parser: argparse.ArgumentParser) -> None:
    """Filters and output options."""
    add_store_options(parser)
    parser.add_argument("instance_id", metavar="INSTANCE")
    parser.add_argument("--entity", help="only this entity (its logical name)")
    parser.add_argument("--since", help="errors last seen since: 30m, 2h, 7d or an ISO time")
    parser.add_argument("--until", help="errors last seen before: 30m, 2h, 7d or an ISO time")
    parser.add_argument("--all", action="store_true", help="include resolved errors")
    parser.add_argument(
        "--pending",
        action="store_true",
        help="list the records waiting for a linked record to reach Marketo instead",
    )
    parser.add_argument(
        "--limit", type=int, default=200, help="show at most this many (default 200)"
    )


def run_list(args: argparse.Namespace) -> int:
    """List the errors."""
    now = SYSTEM_CLOCK.now()
    try:
        since = parse_time(args.since, now) if args.since else None
        until = parse_time(args.until, now) if args.until else None
    except argparse.ArgumentTypeError as exc:
        raise ConfigurationError(f"--since/--until: {exc}") from None
    store = open_store(args)
    errors = store.errors.list(
        args.instance_id,
        entity=args.entity,
        since=since,
        until=until,
        include_resolved=args.all,
        limit=args.limit,
        kind="pending" if args.pending else "errors",
    )
    waiting = (
        []
        if args.pending or args.json
        else store.errors.list(args.instance_id, entity=args.entity, kind="pending")
    )
    what = "records waiting for a dependency" if args.pending else "sync errors"
    if args.json:
        print_json([export_row(e) for e in errors])
    elif errors:
        print(render_table(_HEADERS, [_row(e) for e in errors]))
    else:
        print(f"no {'' if args.all else 'open '}{what} for {args.instance_id}")
    if not args.json and not args.pending and waiting:
        print(
            f"({len(waiting)} records wait for a linked record to reach Marketo; "
            "they are not errors: --pending lists them)"
        )
    return 0


def _row(error: SyncError) -> list[str]:
    return [
        format_time(error.last_seen),
        error.stream.entity,
        error.stream.direction.value,
        error.operation,
        error.dynamics_id or "-",
        error.marketo_id or "-",
        error.code,
        str(error.attempts),
        "resolved" if error.resolved else format_time(error.next_retry_at),
        shorten(error.message, 60),
    ]
