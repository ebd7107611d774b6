"""Storage cost of ID mappings: HTTP requests, rows written and client CPU per 1,000 records.

Runs the state store against a private Azurite and prints, per 1,000 records, for persons
(Dynamics contacts ↔ Marketo leads) and for a one-way entity (accounts → companies):

* new mappings (``put_many`` in pages of ``--page`` records, as the sync stores a page),
* updates (``update_many``: what an incremental run writes per changed record),
* reads by Dynamics id (``get_many``: every page reads its mappings first),
* reads by Marketo id (``find_by_marketo`` where the store has it, else ``get_many_by_marketo``
  once per person entity: what a Marketo → Dynamics page would need).

Usage: ``.venv/bin/python bench/mapping_storage_bench.py [--records 5000] [--page 5000]
[--preload 20000]``. It works against older versions of :mod:`shared.state` too (run it with
``PYTHONPATH`` pointing at another checkout to get that version's figures). Never part of
``make test``: the figures are counts of requests, and times only for information.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from azure.core.credentials import AzureNamedKeyCredential
from azure.core.pipeline.transport import RequestsTransport
from azure.data.tables import TableServiceClient

from emulators.azurite import run_azurite
from shared.clock import ManualClock
from shared.state.mappings import IdMapping, MappingUpdate
from shared.state.store import StateStore
from shared.storage import StorageConnection

INSTANCE = "bench"


@dataclass
class Tally:
    """Requests and written rows seen by the transport."""

    requests: int = 0
    rows_written: int = 0
    by_method: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, method: str, path: str, body: bytes | str | None) -> None:
        if isinstance(body, str):
            body = body.encode("utf-8", "surrogatepass")
        if path.endswith("$batch") and body:
            rows = body.count(b" HTTP/1.1\r\n")
        elif method in ("PUT", "MERGE", "PATCH", "DELETE") or (
            method == "POST" and not path.endswith("Tables")
        ):
            rows = 1
        else:
            rows = 0
        with self.lock:
            self.requests += 1
            self.rows_written += rows
            self.by_method[method] = self.by_method.get(method, 0) + 1


class CountingTransport(RequestsTransport):
    def __init__(self, tally: Tally) -> None:
        super().__init__()
        self._tally = tally

    def send(self, request: Any, **kwargs: Any) -> Any:
        body = getattr(request, "data", None) or getattr(request, "content", None)
        self._tally.add(request.method, request.url.split("?", 1)[0], body)
        return super().send(request, **kwargs)


def _factory(connection: StorageConnection, tally: Tally) -> Callable[[], TableServiceClient]:
    assert connection.account_key is not None

    def make() -> TableServiceClient:
        return TableServiceClient(
            endpoint=connection.table_url,
            credential=AzureNamedKeyCredential(connection.account_name, connection.account_key),
            transport=CountingTransport(tally),
        )

    return make


def _guid(rng: random.Random) -> str:
    return f"{rng.getrandbits(128):032x}"


def _fields(rng: random.Random, names: int = 12) -> dict[str, str]:
    return {f"field{i}": f"{rng.getrandbits(32):08x}" for i in range(names)}


def _person_mappings(rng: random.Random, count: int, first_marketo_id: int) -> list[IdMapping]:
    """Contacts and leads of Dynamics, both Marketo leads (as the sync writes them)."""
    return [
        IdMapping(
            INSTANCE,
            "contact" if i % 4 else "lead",
            _guid(rng),
            "lead",
            str(first_marketo_id + i),
            dynamics_version=str(rng.getrandbits(40)),
            marketo_hash=f"{rng.getrandbits(128):032x}",
            marketo_fields=_fields(rng),
        )
        for i in range(count)
    ]


def _account_mappings(rng: random.Random, count: int, first_marketo_id: int) -> list[IdMapping]:
    return [
        IdMapping(
            INSTANCE,
            "account",
            _guid(rng),
            "company",
            str(first_marketo_id + i),
            dynamics_version=str(rng.getrandbits(40)),
            marketo_hash=f"{rng.getrandbits(128):032x}",
            marketo_fields=_fields(rng),
        )
        for i in range(count)
    ]


@dataclass
class Figure:
    name: str
    records: int
    requests: int
    rows_written: int
    cpu_s: float
    wall_s: float

    def per_thousand(self) -> dict[str, float]:
        scale = 1000 / self.records
        return {
            "requests": round(self.requests * scale, 1),
            "rows_written": round(self.rows_written * scale, 1),
            "cpu_us_per_record": round(self.cpu_s * 1e6 / self.records, 1),
            "wall_ms_per_1000": round(self.wall_s * 1e3 * scale, 1),
        }


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@contextmanager
def measure(tally: Tally, name: str, records: int, out: list[Figure]) -> Iterator[None]:
    requests, rows = tally.requests, tally.rows_written
    cpu, wall = _cpu(), time.perf_counter()
    yield
    out.append(
        Figure(
            name,
            records,
            tally.requests - requests,
            tally.rows_written - rows,
            _cpu() - cpu,
            time.perf_counter() - wall,
        )
    )


def _pages(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _memory_columns() -> tuple[str, ...] | None:
    try:
        from shared.state.mapping_rows import MEMORY_COLUMNS
    except ImportError:  # a version without $select of the memory columns
        return None
    return MEMORY_COLUMNS


def run(records: int, page: int, preload: int, scan: bool = True) -> dict[str, Any]:
    rng = random.Random(20261202)
    tally = Tally()
    figures: list[Figure] = []
    with run_azurite() as azurite:
        connection = StorageConnection.from_connection_string(azurite.connection_string)
        store = StateStore(_factory(connection, tally), table_prefix="bench", clock=ManualClock())
        store.ensure_tables()
        store.mappings.get(INSTANCE, "contact", "warm-up")  # the once-per-process layout check
        if preload:
            for chunk in _pages(_person_mappings(rng, preload, 10_000_000), 5000):
                store.mappings.put_many(chunk)
        persons = _person_mappings(rng, records, 1_000_000)
        accounts = _account_mappings(rng, records, 5_000_000)
        finder = getattr(store.mappings, "find_by_marketo", None)
        memory_columns = _memory_columns()
        if not scan:
            store.mappings.scan_min_ids = 10**9

        for label, batch in (("persons", persons), ("accounts", accounts)):
            with measure(tally, f"{label}: new mappings", records, figures):
                for chunk in _pages(batch, page):
                    store.mappings.put_many(chunk)
            with measure(tally, f"{label}: updates", records, figures):
                for chunk in _pages(batch, page):
                    by_entity: dict[str, list[MappingUpdate]] = {}
                    for m in chunk:
                        by_entity.setdefault(m.entity, []).append(
                            MappingUpdate(
                                m.dynamics_id,
                                dynamics_version=str(rng.getrandbits(40)),
                                marketo_hash=f"{rng.getrandbits(128):032x}",
                                marketo_fields=_fields(rng),
                            )
                        )
                    for entity, updates in by_entity.items():
                        store.mappings.update_many(INSTANCE, entity, updates)
            with measure(tally, f"{label}: reads by Dynamics id", records, figures):
                for chunk in _pages(batch, page):
                    for entity in sorted({m.entity for m in chunk}):
                        ids = [m.dynamics_id for m in chunk if m.entity == entity]
                        found = store.mappings.get_many(INSTANCE, entity, ids)
                        assert len(found) == len(ids), (entity, len(found), len(ids))
            if memory_columns is not None:
                name = f"{label}: reads by Dynamics id, memory columns"
                with measure(tally, name, records, figures):
                    for chunk in _pages(batch, page):
                        for entity in sorted({m.entity for m in chunk}):
                            ids = [m.dynamics_id for m in chunk if m.entity == entity]
                            found = store.mappings.get_many(
                                INSTANCE, entity, ids, columns=memory_columns
                            )
                            assert len(found) == len(ids)

        with measure(tally, "persons: reads by Marketo id", records, figures):
            for chunk in _pages(persons, min(page, 300)):
                ids = [m.marketo_id for m in chunk]
                if finder is not None:
                    hits = len(finder(INSTANCE, "lead", ids))
                else:  # before: one probe per entity a Marketo lead may be
                    hits = sum(
                        len(store.mappings.get_many_by_marketo(INSTANCE, entity, ids))
                        for entity in ("lead", "contact")
                    )
                assert hits == len(ids), (hits, len(ids))
    return {
        "records": records,
        "page": page,
        "preload": preload,
        "api": "find_by_marketo" if finder is not None else "get_many_by_marketo",
        "scan": scan,
        "per_1000": {f.name: f.per_thousand() for f in figures},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=5000)
    parser.add_argument("--page", type=int, default=5000, help="records per put_many call")
    parser.add_argument("--preload", type=int, default=0, help="person mappings stored first")
    parser.add_argument(
        "--no-scan", action="store_true", help="read by filters only (no partition scans)"
    )
    args = parser.parse_args()
    result = run(args.records, args.page, args.preload, scan=not args.no_scan)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
