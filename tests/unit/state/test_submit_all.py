"""submit_all: every planned transaction sent, several at once, failures in planned order."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from azure.core.exceptions import ServiceRequestError

from shared.errors import TransientServiceError
from shared.state import transactions
from shared.state.transactions import TableOperation, submit_all

CLIENT: Any = object()  # never used: the transaction sender is replaced


def _ops(partitions: int, rows: int = 3) -> list[TableOperation]:
    return [
        TableOperation("upsert", {"PartitionKey": f"p{p}", "RowKey": f"r{r}"})
        for p in range(partitions)
        for r in range(rows)
    ]


class Sender:
    """Stands in for the service: records what arrives and how many are in flight at once."""

    def __init__(self, *, rendezvous: int = 1) -> None:
        self.sent: list[str] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self._lock = threading.Lock()
        # The first `rendezvous` transactions wait for each other: they can only get past
        # it if that many are sent at the same time.
        self._barrier = threading.Barrier(rendezvous) if rendezvous > 1 else None
        self.fail: dict[str, threading.Event | None] = {}

    def __call__(self, client: Any, transaction: list[TableOperation]) -> list[dict[str, Any]]:
        partition = str(transaction[0].entity["PartitionKey"])
        with self._lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            first_ones = len(self.sent) < (self._barrier.parties if self._barrier else 0)
            self.sent.append(partition)
        try:
            if self._barrier is not None and first_ones:
                self._barrier.wait(timeout=30)
            if partition in self.fail:
                gate = self.fail[partition]
                if gate is not None:
                    gate.wait(timeout=30)
                raise ServiceRequestError(f"connection to {partition} dropped")
            return [{"etag": "x"} for _ in transaction]
        finally:
            with self._lock:
                self.in_flight -= 1


def test_every_transaction_is_sent_and_several_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """12 partitions make 12 transactions; up to 4 are in flight together, never more."""
    sender = Sender(rendezvous=4)
    monkeypatch.setattr(transactions, "submit_transaction", sender)
    assert submit_all(CLIENT, _ops(12), "writing rows") == 12
    assert sorted(sender.sent) == sorted(f"p{p}" for p in range(12))
    assert sender.most_in_flight == 4


def test_parallel_one_sends_in_order_and_stops_at_the_first_failure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One at a time: the planned order, nothing sent after the failed transaction."""
    sender = Sender()
    sender.fail["p2"] = None
    monkeypatch.setattr(transactions, "submit_transaction", sender)
    with pytest.raises(TransientServiceError, match="writing rows"):
        submit_all(CLIENT, _ops(6), "writing rows", parallel=1)
    assert sender.sent == ["p0", "p1", "p2"]
    assert sender.most_in_flight == 1


def test_the_first_failure_in_planned_order_is_raised(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """p1 fails only after p3 has failed: p1's error is the one raised, translated; p3's is
    logged, not lost."""
    sender = Sender()
    p3_failed = threading.Event()
    sender.fail["p1"] = p3_failed
    sender.fail["p3"] = None
    original = sender.__call__

    def send(client: Any, transaction: list[TableOperation]) -> list[dict[str, Any]]:
        try:
            return original(client, transaction)
        finally:
            if transaction[0].entity["PartitionKey"] == "p3":
                p3_failed.set()

    monkeypatch.setattr(transactions, "submit_transaction", send)
    with pytest.raises(TransientServiceError) as raised:
        submit_all(CLIENT, _ops(4), "writing rows")
    assert "p1" in str(raised.value.__cause__)
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    assert "another transaction of the same call failed" in caplog.text
    assert "writing rows" in caplog.text
