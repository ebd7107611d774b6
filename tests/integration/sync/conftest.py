"""Fixtures: both emulators once per session (in threads), reset before each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from emulators.dynamics.runner import EmulatorHandle, run_dynamics_emulator
from emulators.marketo.runner import RunningMarketo, run_marketo_emulator


@pytest.fixture(scope="session")
def dynamics_emulator() -> Iterator[EmulatorHandle]:
    """The Dataverse emulator for the session."""
    with run_dynamics_emulator() as handle:
        yield handle


@pytest.fixture(scope="session")
def marketo_emulator() -> Iterator[RunningMarketo]:
    """The Marketo emulator for the session."""
    with run_marketo_emulator() as running:
        yield running


@pytest.fixture
def dyn(dynamics_emulator: EmulatorHandle) -> EmulatorHandle:
    """The Dataverse emulator, emptied."""
    dynamics_emulator.control.reset()
    return dynamics_emulator


@pytest.fixture
def mkto(marketo_emulator: RunningMarketo) -> RunningMarketo:
    """The Marketo emulator, emptied."""
    marketo_emulator.control.reset()
    return marketo_emulator
