"""Idle connections leave the client's pool before the server would close them."""

from __future__ import annotations

from emulators.dynamics.server import KEEP_ALIVE_SECONDS as DATAVERSE_EMULATOR_KEEP_ALIVE
from emulators.marketo.serve import KEEP_ALIVE_SECONDS as MARKETO_EMULATOR_KEEP_ALIVE
from shared.http_pool import IDLE_CONNECTION_SECONDS, pool_limits


def test_the_pool_retires_idle_connections_before_common_server_timeouts() -> None:
    limits = pool_limits(6)
    assert (limits.max_connections, limits.max_keepalive_connections) == (6, 6)
    assert limits.keepalive_expiry == IDLE_CONNECTION_SECONDS
    # uvicorn's default keep-alive (5 s) is the shortest of the servers named in the module.
    assert IDLE_CONNECTION_SECONDS < 5


def test_both_emulators_keep_idle_connections_longer_than_the_clients() -> None:
    """Otherwise a call can go out on a connection the emulator is closing: a read error."""
    assert DATAVERSE_EMULATOR_KEEP_ALIVE > IDLE_CONNECTION_SECONDS
    assert MARKETO_EMULATOR_KEEP_ALIVE > IDLE_CONNECTION_SECONDS
