"""The demo's wait for its changes follows the queue's retry delay (host.json).

A job that fails once comes back only after ``visibilityTimeout`` (two minutes shipped); a
budget shorter than that failed the demo on one transient error the sync recovered from.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dmsync.demo.scenario import SCALES, changes_budget

SHIPPED_HOST_JSON = Path(__file__).resolve().parents[3] / "host.json"


@pytest.mark.parametrize("scale", sorted(SCALES))
def test_the_budget_outlasts_one_queue_retry(scale: str) -> None:
    """Shipped host.json: the usual time plus the two-minute redelivery."""
    budget = changes_budget(SCALES[scale], SHIPPED_HOST_JSON)
    assert budget == SCALES[scale].changes_timeout + 120


def test_the_budget_moves_with_the_visibility_timeout(tmp_path: Path) -> None:
    host_json = tmp_path / "host.json"
    host_json.write_text(json.dumps({"extensions": {"queues": {"visibilityTimeout": "00:05:00"}}}))
    assert changes_budget(SCALES["small"], host_json) == SCALES["small"].changes_timeout + 300
