"""Fixtures: one Dynamics emulator per session (background thread), reset before every test.

``dynamics_emulator`` is the running emulator (an ``EmulatorHandle``); ``dyn`` is the same handle
after a reset; ``api`` is a plain httpx client for ``/api/data/v9.2/`` with the documented headers
and a bearer token, as a third-party client would send them.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from emulators.dynamics.runner import EmulatorHandle, run_dynamics_emulator

ODATA_HEADERS = {
    "Accept": "application/json",
    "OData-MaxVersion": "4.0",
    "OData-Version": "4.0",
    "If-None-Match": "null",
}


@pytest.fixture(scope="session")
def dynamics_emulator() -> Iterator[EmulatorHandle]:
    """The session's emulator, served from a background thread on a free port."""
    with run_dynamics_emulator(mode="thread", seed=7) as handle:
        yield handle


@pytest.fixture
def dyn(dynamics_emulator: EmulatorHandle) -> EmulatorHandle:
    """The emulator, emptied and with default limits, faults off and the clock reset."""
    dynamics_emulator.control.reset()
    return dynamics_emulator


@pytest.fixture
def token(dyn: EmulatorHandle) -> str:
    """A bearer token from the emulator's token endpoint (client credentials)."""
    with dyn.http_client() as http:
        return dyn.fetch_token(http)


@pytest.fixture
def api(dyn: EmulatorHandle, token: str) -> Iterator[httpx.Client]:
    """httpx client for the Web API root with the documented headers and the bearer token."""
    headers = {**ODATA_HEADERS, "Authorization": f"Bearer {token}"}
    with httpx.Client(
        base_url=dyn.api_url + "/", verify=dyn.ssl_context(), headers=headers, timeout=30
    ) as client:
        yield client
