"""Serving an :class:`Emulator` with uvicorn over HTTPS (foreground or a background thread)."""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
import time
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import uvicorn

from emulators.dynamics.app import Emulator
from emulators.dynamics.tls import TlsFiles, write_tls_files

KEEP_ALIVE_SECONDS = 30
"""How long an idle connection is kept open (Dataverse's own is not documented)."""


class _Server(uvicorn.Server):
    """uvicorn that stops at once on SIGTERM/SIGINT and exits cleanly instead of re-raising.

    Stopping does not wait for idle keep-alive TLS connections: an idle client that never
    answers the TLS close would otherwise hold shutdown for the SSL shutdown timeout.
    """

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.should_exit = True
        self.force_exit = True

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        handled = (signal.SIGINT, signal.SIGTERM)
        originals = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in originals.items():
                signal.signal(sig, handler)


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket (``port`` 0 picks a free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def public_host(host: str) -> str:
    """The host to put in URLs (a wildcard bind is reached through loopback)."""
    return "127.0.0.1" if host in ("0.0.0.0", "", "::") else host  # noqa: S104 - mapping only


@dataclass
class RunningServer:
    """A started server: where it listens and how to stop it."""

    emulator: Emulator
    server: uvicorn.Server
    sock: socket.socket
    tls: TlsFiles
    base_url: str
    thread: threading.Thread | None = None

    def stop(self) -> None:
        """Stop serving (held requests are cancelled) and wait for the thread."""
        self.server.should_exit = True
        self.server.force_exit = True
        if self.thread is not None:
            self.thread.join(timeout=15)
        self.sock.close()


def prepare(emulator: Emulator, host: str, port: int, ca_dir: Path) -> RunningServer:
    """Bind, write TLS files and build the uvicorn server (not started yet)."""
    sock = bind(host, port)
    actual_port = sock.getsockname()[1]
    shown = public_host(host)
    tls = write_tls_files(ca_dir, [shown])
    base_url = f"https://{shown}:{actual_port}"
    emulator.base_url = base_url
    emulator.ca_path = str(tls.ca_path)
    config = uvicorn.Config(
        emulator.asgi(),
        ssl_certfile=str(tls.server_pem),
        log_level="warning",
        access_log=False,
        lifespan="off",
        http="h11",
        loop="asyncio",
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
    )
    return RunningServer(emulator, _Server(config), sock, tls, base_url)


def start_in_thread(running: RunningServer, startup_timeout: float = 20.0) -> RunningServer:
    """Serve from a daemon thread; returns once the server accepts connections."""
    thread = threading.Thread(
        target=running.server.run,
        kwargs={"sockets": [running.sock]},
        name="dynamics-emulator",
        daemon=True,
    )
    running.thread = thread
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not running.server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the Dynamics emulator did not start")
        time.sleep(0.01)
    return running
