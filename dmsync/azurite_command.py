"""``dmsync azurite``: run a private Azurite until stopped (for trying the host by hand)."""

from __future__ import annotations

import argparse
import signal
import threading


def configure(parser: argparse.ArgumentParser) -> None:
    """No options: ports are chosen free and printed."""
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")


def run(args: argparse.Namespace) -> int:
    """Start Azurite, print ``AzureWebJobsStorage=<connection string>``, serve until a signal."""
    from emulators.azurite import run_azurite

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with run_azurite(host=args.host) as azurite:
        print(f"AzureWebJobsStorage={azurite.connection_string}", flush=True)
        stop.wait()
    return 0
