"""Injected faults: deterministic failures a client must survive (faults.py)."""

from __future__ import annotations

import time

import httpx
import pytest

from emulators.marketo.runner import RunningMarketo
from tests.integration.marketo_emulator.helpers import error_code, ok, sync_leads

DESCRIBE = "/rest/v1/leads/describe2.json"


def test_queued_faults_answer_in_order(rest: httpx.Client, mkto: RunningMarketo) -> None:
    mkto.control.set_faults(next_faults=["606", "615", "611", "608"])
    assert error_code(rest.get(DESCRIBE)) == "606"
    assert error_code(rest.get(DESCRIBE)) == "615"
    assert error_code(rest.get(DESCRIBE)) == "611"
    assert error_code(rest.get(DESCRIBE)) == "608"
    ok(rest.get(DESCRIBE))
    usage = mkto.control.usage()
    assert usage.faults == {"606": 1, "615": 1, "611": 1, "608": 1}
    assert usage.counted == 1


def test_502_is_an_http_502(rest: httpx.Client, mkto: RunningMarketo) -> None:
    mkto.control.set_faults(next_faults=["502"])
    assert error_code(rest.get(DESCRIBE), status=502) == "502"


def test_a_drop_before_processing_writes_nothing(rest: httpx.Client, mkto: RunningMarketo) -> None:
    mkto.control.set_faults(next_faults=["drop"])
    with pytest.raises(httpx.RemoteProtocolError):
        rest.post("/rest/v1/leads.json", json={"input": [{"email": "lost@example.com"}]})
    assert mkto.control.leads() == []


def test_a_drop_after_processing_keeps_the_write(rest: httpx.Client, mkto: RunningMarketo) -> None:
    mkto.control.set_faults(next_faults=["drop_after"])
    with pytest.raises(httpx.RemoteProtocolError):
        rest.post("/rest/v1/leads.json", json={"input": [{"email": "kept@example.com"}]})
    assert [lead["email"] for lead in mkto.control.leads()] == ["kept@example.com"]
    # A retry of the same upsert updates instead of duplicating.
    assert sync_leads(rest, [{"email": "kept@example.com"}])[0]["status"] == "updated"


def test_a_timeout_hangs_then_answers_604(rest: httpx.Client, mkto: RunningMarketo) -> None:
    mkto.control.set_faults(next_faults=["timeout"], hang_seconds=0.05)
    assert error_code(rest.get(DESCRIBE)) == "604"
    mkto.control.set_faults(next_faults=["timeout"], hang_seconds=300)
    with pytest.raises(httpx.ReadTimeout):
        rest.get(DESCRIBE, timeout=0.2)
    assert mkto.control.usage().in_flight == 1
    mkto.control.reset()  # a reset ends the hang, so it holds no concurrency slot afterwards
    for _ in range(500):
        if mkto.control.usage().in_flight == 0:
            break
        time.sleep(0.01)
    assert mkto.control.usage().in_flight == 0


def test_random_faults_are_reproducible_from_the_seed(
    rest: httpx.Client, mkto: RunningMarketo
) -> None:
    def outcomes() -> list[str]:
        mkto.control.set_faults(rates={"606": 0.3, "611": 0.2}, seed=7, latency_ms=(0, 2))
        codes = []
        for _ in range(40):
            body = rest.get(DESCRIBE).json()
            codes.append("ok" if body["success"] else body["errors"][0]["code"])
        return codes

    first = outcomes()
    assert first == outcomes()
    assert {"ok", "606", "611"} == set(first)


def test_faults_can_target_paths(rest: httpx.Client, mkto: RunningMarketo) -> None:
    mkto.control.set_faults(rates={"611": 1.0}, paths=["/rest/v1/activities"])
    ok(rest.get(DESCRIBE))
    response = rest.get(
        "/rest/v1/activities/pagingtoken.json", params={"sinceDatetime": "2024-01-01T00:00:00Z"}
    )
    assert error_code(response) == "611"


def test_bad_fault_settings_are_refused(mkto: RunningMarketo) -> None:
    response = httpx.put(
        f"{mkto.base_url}/_emulator/faults", json={"rates": {"606": 0.8, "611": 0.5}}
    )
    assert response.status_code == 400
    response = httpx.put(f"{mkto.base_url}/_emulator/faults", json={"rates": {"999": 0.1}})
    assert response.status_code == 400
