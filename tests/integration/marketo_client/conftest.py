"""Contract tests of the Marketo client over real HTTP against the Marketo emulator.

The emulator runs in a background thread (``emulators.marketo.runner``), reset before each test.
The client is built exactly as production builds it, from ``MarketoSettings``; only time is
injected: :class:`LinkedClock` is the client's clock, and every wait the client makes (a 606
pause, a backoff, the governor's window) also moves the emulator's frozen clock by the same
amount, so a 20 s rate window passes in no real time and both sides agree that it passed.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable, Iterator

import pytest

from emulators.marketo.control_client import MarketoControl
from emulators.marketo.runner import RunningMarketo, run_marketo_emulator
from shared.clock import ManualClock
from shared.marketo import Governor, Limits, MarketoClient
from shared.settings import MarketoSettings, load

pytestmark = pytest.mark.integration

REAL_SHARE = Limits(calls_per_window=100, max_concurrency=10, daily_budget=50_000)
"""The client at the instance's full documented limits (the emulator enforces them)."""


class LinkedClock(ManualClock):
    """The client's clock; its sleeps advance the (frozen) emulator clock too, and run the
    ``on_sleep`` hooks (a test can let the emulator do work "meanwhile")."""

    def __init__(self, control: MarketoControl) -> None:
        control.freeze_clock()
        super().__init__(control.now())
        self._control = control
        self.on_sleep: list[Callable[[float], object]] = []

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if seconds > 0:
            # The emulator's clock first: while its advance is on the way, another call can go
            # out, and it must not meet an emulator that is behind the client's time (the
            # governor would think a window had passed that the emulator still counts: a 606).
            await asyncio.to_thread(self._control.advance_clock, seconds)
            self.advance(seconds)
            for hook in self.on_sleep:
                await asyncio.to_thread(hook, seconds)
        await asyncio.sleep(0)


@pytest.fixture(scope="session")
def marketo_server() -> Iterator[RunningMarketo]:
    """One emulator for the session, at Marketo's real limits."""
    with run_marketo_emulator() as running:
        yield running


@pytest.fixture
def mkto(marketo_server: RunningMarketo) -> RunningMarketo:
    """The emulator, reset (data, tokens, limits, faults, clock)."""
    marketo_server.control.reset()
    return marketo_server


@pytest.fixture
def clock(mkto: RunningMarketo) -> LinkedClock:
    """Client time linked to the emulator's time."""
    return LinkedClock(mkto.control)


ClientFactory = Callable[..., MarketoClient]


@pytest.fixture
async def make_client(mkto: RunningMarketo, clock: LinkedClock) -> AsyncIterator[ClientFactory]:
    """Build clients from settings pointing at the emulator (closed after the test)."""
    clients: list[MarketoClient] = []

    def make(*, limits: Limits = REAL_SHARE, secret: str | None = None) -> MarketoClient:
        settings = load(
            MarketoSettings,
            {
                "MARKETO_BASE_URL": mkto.base_url,
                "MARKETO_CLIENT_ID": mkto.client_id,
                "MARKETO_CLIENT_SECRET": secret or mkto.client_secret,
            },
        )
        governor = Governor(limits, clock=clock, rng=random.Random(5))
        client = MarketoClient(settings, clock=clock, governor=governor, rng=random.Random(9))
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


@pytest.fixture
def client(make_client: ClientFactory) -> MarketoClient:
    """A client at the real limits."""
    return make_client()
