"""``dmsync host``: run ``function_app.py`` locally like the Azure Functions host.

Order of start-up, as ``func start``: read ``local.settings.json`` into the environment (variables
already set win), import and index the app, read ``host.json``, then start timers and queue
listeners against ``AzureWebJobsStorage``. SIGINT/SIGTERM stop receiving and give in-flight
invocations ``--grace-seconds`` to finish; a second signal ends the grace at once.

Exit status: 0 when stopped by a signal or idle (``--until-idle``) or after ``--max-seconds``
without ``--until-idle``; 1 when ``--max-seconds`` ran out before idle, when a listener failed,
or when invocations had to be abandoned; 2 for a configuration or load error (names the cause).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from dmsync.host.app_loader import load_app
from dmsync.host.app_settings import apply_local_settings, default_host_id, read_local_settings
from dmsync.host.host_config import queue_options, read_host_json
from dmsync.host.invoker import worker_thread_count
from dmsync.host.queues import DEFAULT_LEASE_SECONDS
from dmsync.host.runtime import FunctionsHost, HostOutcome, HostResult
from dmsync.host.storage_access import StorageAccess
from dmsync.host.timer_status import STATUS_TABLE, TableScheduleStatusStore
from shared.errors import ConfigurationError

logger = logging.getLogger("dmsync.host")

IO_THREADS = 8
"""Threads for storage calls (receives, deletes, lease renewals), apart from the function pool.

Kept below the storage SDK's HTTP connection pool (10 per client), so connections are reused
rather than opened and discarded under load."""


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be greater than 0")
    return value


def configure(parser: argparse.ArgumentParser) -> None:
    """Options of ``dmsync host``."""
    parser.add_argument(
        "--app",
        type=Path,
        default=None,
        metavar="PATH",
        help="the entry script or the app folder (default: function_app.py in the current "
        "directory; PYTHON_SCRIPT_FILE_NAME names the script in a folder)",
    )
    parser.add_argument(
        "--settings",
        type=Path,
        default=None,
        metavar="FILE",
        help="local.settings.json to load into the environment (default: the app folder's)",
    )
    parser.add_argument(
        "--until-idle",
        action="store_true",
        help="exit 0 once every timer fired once and every queue is empty with nothing running",
    )
    parser.add_argument(
        "--max-seconds",
        type=_positive_float,
        default=None,
        metavar="N",
        help="stop after N seconds (with --until-idle: fail if not idle by then)",
    )
    parser.add_argument(
        "--grace-seconds",
        type=_positive_float,
        default=30.0,
        metavar="N",
        help="how long in-flight invocations may finish after a stop (default 30)",
    )
    parser.add_argument(
        "--message-lease",
        type=int,
        default=DEFAULT_LEASE_SECONDS,
        metavar="SECONDS",
        help="seconds a received message stays hidden, renewed at half-time while it runs "
        "(default 600, as the real host; lower it only to test redelivery)",
    )
    parser.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"]
    )


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # The storage SDK logs every HTTP request at INFO; keep the host's own lines readable.
    logging.getLogger("azure").setLevel(logging.WARNING)


def _app_folder(app: Path | None) -> Path:
    if app is None:
        return Path.cwd()
    return app if app.is_dir() else app.parent


def build_host(args: argparse.Namespace, io_executor: ThreadPoolExecutor) -> FunctionsHost:
    """Apply settings, load the app and wire the host to storage.

    Raises:
        ConfigurationError: naming the setting, file or function at fault.
    """
    settings_path = args.settings or _app_folder(args.app) / "local.settings.json"
    if args.settings is not None and not settings_path.is_file():
        raise ConfigurationError(f"settings file {settings_path} does not exist")
    applied = apply_local_settings(read_local_settings(settings_path))
    if applied:
        logger.info("loaded %d app setting(s) from %s", len(applied), settings_path)
    if args.message_lease < 1:
        raise ConfigurationError("--message-lease must be at least 1 second")
    app = load_app(args.app, os.environ)
    options = queue_options(read_host_json(app.directory / "host.json"), os.environ)
    storage = StorageAccess(os.environ, io_executor)
    host_id = default_host_id(app.directory, os.environ)
    return FunctionsHost(
        app,
        queues=storage.queue,
        status_store=TableScheduleStatusStore(lambda: storage.host_table(STATUS_TABLE), host_id),
        queue_options=options,
        thread_count=worker_thread_count(os.environ),
        lease_seconds=args.message_lease,
    )


async def _serve(host: FunctionsHost, args: argparse.Namespace) -> HostResult:
    stop, force_stop = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal(signum: int) -> None:
        name = signal.Signals(signum).name
        if stop.is_set():
            logger.warning("%s again: abandoning in-flight invocations now", name)
            force_stop.set()
        else:
            logger.info("%s received: stopping (in-flight invocations may finish)", name)
            stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal, signum)
    return await host.run(
        stop=stop,
        force_stop=force_stop,
        until_idle=args.until_idle,
        max_seconds=args.max_seconds,
        grace_seconds=args.grace_seconds,
    )


def _exit_code(result: HostResult, args: argparse.Namespace) -> int:
    if result.outcome is HostOutcome.TIME_LIMIT and args.until_idle:
        print(
            f"dmsync host: not idle after {args.max_seconds:g} s: {result.detail or 'unknown'}",
            file=sys.stderr,
        )
        return 1
    if result.outcome is HostOutcome.FAILED:
        print(f"dmsync host: stopped after a failure: {result.detail}", file=sys.stderr)
        return 1
    if result.abandoned:
        print(
            f"dmsync host: {result.abandoned} invocation(s) abandoned at shutdown; their "
            "messages reappear after their lease",
            file=sys.stderr,
        )
        return 1
    return 0


def run(args: argparse.Namespace) -> int:
    """Run the host until idle, out of time, or stopped by a signal."""
    _configure_logging(args.log_level)
    io_executor = ThreadPoolExecutor(IO_THREADS, thread_name_prefix="storage-io")
    host = build_host(args, io_executor)
    result = asyncio.run(_serve(host, args))
    code = _exit_code(result, args)
    io_executor.shutdown(wait=False, cancel_futures=True)
    if result.abandoned:
        # A plain function abandoned in its thread would keep the interpreter from exiting
        # (thread pools are joined at exit); the real worker process is killed the same way.
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code
