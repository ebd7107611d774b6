"""``dmsync emulator marketo``: serve the Marketo emulator until SIGTERM/SIGINT.

Prints exactly one line, ``listening on <base url>``, once it accepts connections. The default
client credentials are ``dmsync-emulator`` / ``dmsync-emulator-secret`` (see the README).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from pydantic import SecretStr, ValidationError

from emulators.marketo.app import build_app
from emulators.marketo.config import (
    ApiClient,
    EmulatorConfig,
    LimitSettings,
    default_config,
    load_config,
)
from emulators.marketo.seed import SeedError, SeedRequest, seed
from emulators.marketo.serve import base_url, bind, make_server
from shared.errors import ConfigurationError

DEFAULT_PORT = 8766


def configure(parser: argparse.ArgumentParser) -> None:
    """Options of ``dmsync emulator marketo``."""
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0 = any)"
    )
    parser.add_argument("--config", type=Path, help="JSON configuration file (see README)")
    parser.add_argument("--seed", type=Path, help="JSON file with a /_emulator/seed body")
    parser.add_argument(
        "--generate-leads", type=int, default=0, metavar="N", help="start with N synthetic leads"
    )
    parser.add_argument("--client-id", help="replace the configured API client's id")
    parser.add_argument("--client-secret", help="replace the configured API client's secret")
    parser.add_argument(
        "--no-limits", action="store_true", help="switch off the 606/607/615 limits"
    )
    parser.add_argument("--log-level", default="warning", help="uvicorn log level")


def _config(args: argparse.Namespace) -> EmulatorConfig:
    try:
        config = load_config(args.config) if args.config else default_config()
    except (OSError, ValueError, ValidationError) as exc:
        raise ConfigurationError(f"--config {args.config}: {exc}") from None
    updates: dict[str, object] = {}
    if args.client_id or args.client_secret:
        first = config.clients[0]
        client = ApiClient(
            client_id=args.client_id or first.client_id,
            client_secret=SecretStr(args.client_secret)
            if args.client_secret
            else first.client_secret,
            api_user=first.api_user,
        )
        updates["clients"] = (client, *config.clients[1:])
    if args.no_limits:
        updates["limits"] = LimitSettings.model_validate(
            config.limits.model_dump() | {"enabled": False}
        )
    return config.model_copy(update=updates) if updates else config


def run(args: argparse.Namespace) -> int:
    """Serve until SIGTERM/SIGINT; returns 0."""
    config = _config(args)
    app, emulator = build_app(config)
    try:
        if args.seed:
            seed(emulator.instance, SeedRequest.model_validate(json.loads(args.seed.read_text())))
        if args.generate_leads:
            seed(
                emulator.instance,
                SeedRequest.model_validate({"generateLeads": {"count": args.generate_leads}}),
            )
    except (OSError, ValueError, ValidationError, SeedError) as exc:
        raise ConfigurationError(f"--seed: {exc}") from None
    try:
        sock = bind(args.host, args.port)
    except OSError as exc:
        raise ConfigurationError(f"cannot listen on {args.host}:{args.port}: {exc}") from None
    server = make_server(app, emulator, args.log_level)

    async def announce() -> None:
        while not server.started:
            if server.should_exit:
                return
            await asyncio.sleep(0.01)
        print(f"listening on {base_url(sock)}", flush=True)

    async def main() -> None:
        announcer = asyncio.create_task(announce())
        await server.serve(sockets=[sock])
        announcer.cancel()

    asyncio.run(main())
    sys.stdout.flush()
    return 0
