"""The row of one shared API budget: its key and its entity form (the ledger as columns).

One row per budget, in its own partition (``PartitionKey`` = the budget's key, ``RowKey`` =
``ledger``), so the budgets never contend with each other. The holders' entries are one JSON
column: each is a few numbers and at most ``80`` release buckets, so even a dozen processes
stay far below the 64 KiB property limit (reference §7).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from shared.budget.rules import BudgetLimits, Holding, Ledger

ROW_KEY = "ledger"


def budget_key(system: str, *parts: str) -> str:
    """The partition key of a budget: ``<system>-<hash of its identity>``.

    The identity (a base URL and a client id) is hashed so that no URL or id is spelled out
    in a key, and the key stays a valid, short, case-stable table key.
    """
    digest = hashlib.sha256("\n".join(parts).encode()).hexdigest()[:24]
    return f"{system}-{digest}"


@dataclass(frozen=True)
class BudgetRow:
    """One stored budget: its key, the API, the limits its last writer kept, its ledger."""

    key: str
    system: str
    limits: BudgetLimits | None
    ledger: Ledger


def to_entity(
    key: str, ledger: Ledger, *, system: str = "", limits: BudgetLimits | None = None
) -> dict[str, Any]:
    """The row for ``ledger`` (with the writer's API and limits, for ``dmsync status``)."""
    holders = {
        name: {
            "e": h.expires,
            "o": h.open,
            "c": h.concurrency,
            "r": [[at, n] for at, n in h.released],
            "w": int(h.wants),
            "s": h.starving_since,
        }
        for name, h in ledger.holders.items()
    }
    entity: dict[str, Any] = {
        "PartitionKey": key,
        "RowKey": ROW_KEY,
        "Day": ledger.day,
        "DayUsed": ledger.day_used,
        "PauseUntil": float(ledger.pause_until),
        "Holders": json.dumps(holders, separators=(",", ":")),
    }
    if ledger.stop_until is not None:
        entity["StopUntil"] = float(ledger.stop_until)
    if system:
        entity["System"] = system
    if limits is not None:
        entity.update(
            CallsPerWindow=limits.calls_per_window,
            WindowSeconds=float(limits.window_seconds),
            MaxConcurrency=limits.max_concurrency,
            MarginSeconds=float(limits.margin_seconds),
            LeaseSeconds=float(limits.lease_seconds),
        )
        if limits.daily_budget is not None:
            entity["DailyBudget"] = limits.daily_budget
    return entity


def row_from_entity(entity: Any) -> BudgetRow:
    """A listed row: key, API, limits (``None`` if never written with them) and ledger."""
    limits = None
    if entity.get("CallsPerWindow") is not None:
        daily = entity.get("DailyBudget")
        limits = BudgetLimits(
            calls_per_window=int(entity["CallsPerWindow"]),
            window_seconds=float(entity["WindowSeconds"]),
            max_concurrency=int(entity["MaxConcurrency"]),
            daily_budget=None if daily is None else int(daily),
            margin_seconds=float(entity.get("MarginSeconds") or 0.0),
            lease_seconds=float(entity.get("LeaseSeconds") or 10.0),
        )
    return BudgetRow(
        key=str(entity["PartitionKey"]),
        system=str(entity.get("System") or ""),
        limits=limits,
        ledger=from_entity(entity),
    )


def from_entity(entity: Any) -> Ledger:
    """The ledger in a row (missing columns read as empty)."""
    raw = json.loads(str(entity.get("Holders") or "{}"))
    holders = {
        str(name): Holding(
            expires=float(h["e"]),
            open=int(h["o"]),
            concurrency=int(h["c"]),
            released=tuple((float(at), int(n)) for at, n in h["r"]),
            wants=bool(h.get("w", 0)),
            starving_since=None if h.get("s") is None else float(h["s"]),
        )
        for name, h in raw.items()
    }
    stop = entity.get("StopUntil")
    return Ledger(
        holders=MappingProxyType(holders),
        day=str(entity.get("Day") or ""),
        day_used=int(entity.get("DayUsed") or 0),
        stop_until=None if stop is None else float(stop),
        pause_until=float(entity.get("PauseUntil") or 0.0),
    )
