"""Serving an app with uvicorn on a socket we bind ourselves (so port 0 picks a free port)."""

from __future__ import annotations

import socket

import uvicorn
from starlette.applications import Starlette

from emulators.marketo.emulator import Emulator


class EmulatorServer(uvicorn.Server):
    """uvicorn's server, ending injected hangs before it waits for open connections."""

    def __init__(self, config: uvicorn.Config, emulator: Emulator) -> None:
        super().__init__(config)
        self.emulator = emulator

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """Release hanging calls and held gates, then shut down as uvicorn does."""
        self.emulator.stopping().set()
        self.emulator.gate.release()
        await super().shutdown(sockets=sockets)


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (``port=0``: any free port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio turns on TCP_NODELAY only for sockets that say so, and
    # without it every response waits ~40 ms for a delayed ACK (Nagle).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


KEEP_ALIVE_SECONDS = 30
"""How long an idle connection is kept open. Marketo does not document its own; uvicorn's 5 s
default equals httpx's default pool expiry, and a client reusing a connection just as the server
closes it gets a read error (shared/http_pool.py). 30 s, as the Dataverse emulator."""


def make_server(app: Starlette, emulator: Emulator, log_level: str = "warning") -> EmulatorServer:
    """A server for ``app`` (no access log: it would dominate the emulator's CPU time)."""
    config = uvicorn.Config(
        app,
        log_level=log_level,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=2,
        h11_max_incomplete_event_size=64 * 1024,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
    )
    return EmulatorServer(config, emulator)


def base_url(sock: socket.socket) -> str:
    """``http://host:port`` of a bound socket."""
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"
