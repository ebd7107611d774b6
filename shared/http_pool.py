"""Connection-pool limits for the Dataverse and Marketo clients.

A server closes a keep-alive connection after it has been idle for its own timeout. If the
client sends a request on that connection at the moment the server closes it, the request
fails with a read error, and the client cannot tell whether the server saw it: a write (a
POST) must then not be repeated, so the whole job fails and waits for the queue's retry. The
client therefore retires idle connections first: after :data:`IDLE_CONNECTION_SECONDS`, below
the idle timeouts servers commonly use (uvicorn's default is 5 s, nginx's 75 s, Azure's load
balancers' 4 minutes). A job's calls follow each other closely and keep reusing their
connections; only a connection idle between two jobs is replaced (one new TLS handshake).
"""

from __future__ import annotations

import httpx

IDLE_CONNECTION_SECONDS = 4.0
"""How long an idle connection stays in the pool."""


def pool_limits(connections: int) -> httpx.Limits:
    """At most ``connections`` open (all of them may stay alive while in use)."""
    return httpx.Limits(
        max_connections=connections,
        max_keepalive_connections=connections,
        keepalive_expiry=IDLE_CONNECTION_SECONDS,
    )
