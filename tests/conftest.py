"""Shared fixtures: a private Azurite per test session, and a clean storage namespace per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from emulators.azurite import AzuriteInstance, run_azurite
from tests import hypothesis_profiles

hypothesis_profiles.load(os.environ)


@pytest.fixture(scope="session")
def azurite() -> Iterator[AzuriteInstance]:
    """One Azurite for the whole session, started on free ports and always stopped."""
    with run_azurite() as instance:
        yield instance


@pytest.fixture
def storage_connection_string(azurite: AzuriteInstance) -> str:
    """``AzureWebJobsStorage`` for the session's Azurite."""
    return azurite.connection_string


@pytest.fixture
def unique_name() -> str:
    """A short name unique to this test, valid for queues and tables (letters and digits)."""
    return "t" + uuid.uuid4().hex[:12]
