"""``dmsync emulator dynamics``: serve the Dataverse Web API emulator until SIGTERM/SIGINT.

Prints exactly one line, ``listening on <base url>``, to stdout once serving. The CA bundle to
trust is written to ``<ca-dir>/ca.pem`` (its path is printed on stderr, with the tenant and client
id; the client secret is never printed).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path

SECRET_ENV = "DYNAMICS_EMULATOR_CLIENT_SECRET"  # noqa: S105 - a variable name


def configure(parser: argparse.ArgumentParser) -> None:
    """Options of ``dmsync emulator dynamics``."""
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port (default 0: a free port)")
    parser.add_argument(
        "--seed", type=int, default=0, help="seed for ids and seed data (default 0)"
    )
    parser.add_argument(
        "--records", type=int, default=0, help="seed this many rows per table at start (default 0)"
    )
    parser.add_argument("--ca-dir", type=Path, default=None, help="where to write ca.pem")
    parser.add_argument("--config", type=Path, default=None, help="emulator configuration (JSON)")
    parser.add_argument("--tenant-id", default=None, help="tenant the token endpoint accepts")
    parser.add_argument("--client-id", default=None, help="client id the token endpoint accepts")
    parser.add_argument(
        "--token-lifetime", type=int, default=None, help="access-token lifetime in seconds"
    )


def run(args: argparse.Namespace) -> int:
    """Start serving; returns 0 after a clean stop."""
    from emulators.dynamics.app import Emulator
    from emulators.dynamics.config import EmulatorConfig
    from emulators.dynamics.control import SeedRequest, seed_environment
    from emulators.dynamics.server import prepare

    config = EmulatorConfig.load(args.config) if args.config else EmulatorConfig()
    auth_overrides: dict[str, object] = {}
    if args.tenant_id:
        auth_overrides["tenant_id"] = args.tenant_id
    if args.client_id:
        auth_overrides["client_id"] = args.client_id
    if args.token_lifetime:
        auth_overrides["token_lifetime_seconds"] = args.token_lifetime
    if os.environ.get(SECRET_ENV):
        auth_overrides["client_secret"] = os.environ[SECRET_ENV]
    if auth_overrides:
        config = config.model_copy(update={"auth": config.auth.model_copy(update=auth_overrides)})
    emulator = Emulator(config, seed=args.seed)
    if args.records:
        seed_environment(emulator.env, SeedRequest(records_per_table=args.records), args.seed)
    ca_dir = args.ca_dir or Path(tempfile.mkdtemp(prefix="dmsync-dynamics-"))
    running = prepare(emulator, args.host, args.port, ca_dir)

    async def serve() -> None:
        task = asyncio.create_task(running.server.serve(sockets=[running.sock]))
        while not running.server.started and not task.done():  # noqa: ASYNC110 - uvicorn sets a flag
            await asyncio.sleep(0.01)
        if running.server.started:
            print(
                f"dynamics emulator: CA bundle {running.tls.ca_path}; tenant "
                f"{config.auth.tenant_id}; client id {config.auth.client_id}",
                file=sys.stderr,
                flush=True,
            )
            print(f"listening on {running.base_url}", flush=True)
        await task

    asyncio.run(serve())
    running.sock.close()
    return 0
