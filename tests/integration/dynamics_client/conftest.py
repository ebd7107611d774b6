"""Fixtures for the client's contract tests: the Dataverse emulator over real HTTPS.

The client is built exactly as production builds it: from ``DynamicsSettings`` (URL, tenant,
client id, secret, ``AZURE_AUTHORITY_HOST``) with the real azure-identity
``ClientSecretCredential`` talking to the emulator's Entra-style token endpoint. Only the clock
(waits are recorded, not slept) and the jitter source are injected.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Iterator

import pytest

from emulators.dynamics.runner import EmulatorHandle, run_dynamics_emulator
from shared.clock import ManualClock
from shared.dynamics import DynamicsClient, TableRef
from shared.settings import DynamicsSettings, load

CONTACTS = TableRef.standard("contact", "contacts")
ACCOUNTS = TableRef.standard("account", "accounts")


@pytest.fixture(scope="session")
def dataverse() -> Iterator[EmulatorHandle]:
    """One emulator for the client's contract tests (a background thread, free port)."""
    with run_dynamics_emulator(mode="thread", seed=11) as handle:
        yield handle


@pytest.fixture
def emulator(dataverse: EmulatorHandle) -> EmulatorHandle:
    """The emulator, reset: no rows, default limits, no faults, fresh clock and counters."""
    dataverse.control.reset()
    return dataverse


def settings_for(emulator: EmulatorHandle, **overrides: str) -> DynamicsSettings:
    """App settings pointing at the emulator, as an operator would write them."""
    env = {
        "DYNAMICS_URL": emulator.base_url,
        "DYNAMICS_TENANT_ID": emulator.tenant_id,
        "DYNAMICS_CLIENT_ID": emulator.client_id,
        "DYNAMICS_CLIENT_SECRET": emulator.client_secret,
        "AZURE_AUTHORITY_HOST": emulator.base_url,
        **overrides,
    }
    return load(DynamicsSettings, env)


@pytest.fixture
def clock() -> ManualClock:
    """The client's clock: retries record their waits here instead of sleeping."""
    return ManualClock()


@pytest.fixture
async def client(emulator: EmulatorHandle, clock: ManualClock) -> AsyncIterator[DynamicsClient]:
    """A client from settings, with the real ClientSecretCredential and the emulator's CA."""
    async with DynamicsClient(
        settings_for(emulator), verify=emulator.ca_path, clock=clock, rng=random.Random(3)
    ) as dynamics:
        yield dynamics
