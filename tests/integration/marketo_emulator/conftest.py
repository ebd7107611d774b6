"""Fixtures: one Marketo emulator (thread mode) per session, reset before every test.

``mkto`` is the running emulator (``base_url``, ``client_id``, ``client_secret``, ``control``);
``token`` is a fresh access token obtained as the docs describe; ``rest`` is a plain httpx client
that sends it as ``Authorization: Bearer``.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from emulators.marketo.runner import RunningMarketo, run_marketo_emulator


@pytest.fixture(scope="session")
def marketo_emulator() -> Iterator[RunningMarketo]:
    """One emulator for the whole session, on a free port, always stopped."""
    with run_marketo_emulator() as running:
        yield running


@pytest.fixture
def mkto(marketo_emulator: RunningMarketo) -> RunningMarketo:
    """The session's emulator, reset to its starting state (data, tokens, limits, faults)."""
    marketo_emulator.control.reset()
    return marketo_emulator


@pytest.fixture
def token(mkto: RunningMarketo) -> str:
    """An access token from ``GET /identity/oauth/token`` (Marketo developer docs,
    "Authentication")."""
    response = httpx.get(f"{mkto.identity_url}/oauth/token", params=mkto.credentials)
    response.raise_for_status()
    value: str = response.json()["access_token"]
    return value


@pytest.fixture
def rest(mkto: RunningMarketo, token: str) -> Iterator[httpx.Client]:
    """An httpx client for the emulator sending the token as a Bearer header."""
    with httpx.Client(
        base_url=mkto.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as client:
        yield client
