"""A job's memory of link targets: each target asked about once, the own entity never kept."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from shared.sync.links import JobLinkMemory


class Recorder:
    """Fake mapping lookup and Dataverse probe that note what they were asked."""

    def __init__(self) -> None:
        self.looked_up: list[tuple[str, list[str]]] = []
        self.probed: list[tuple[str, list[str]]] = []

    async def lookup(self, entity: str, ids: Sequence[str]) -> Mapping[str, tuple[str, bool]]:
        self.looked_up.append((entity, list(ids)))
        return {i.lower(): (f"m-{i.lower()}", True) for i in ids if i.lower().startswith("a")}

    async def probe(self, entity: str, ids: Sequence[str]) -> Mapping[str, bool]:
        self.probed.append((entity, list(ids)))
        return {i.lower(): i.lower() != "x2" for i in ids if i.lower().startswith("x")}


async def test_each_target_is_asked_about_once_per_job() -> None:
    """Found, missing and probed answers are all remembered, whatever the id's case."""
    calls = Recorder()
    memory = JobLinkMemory("contact", calls.lookup, calls.probe)
    assert await memory.lookup("account", ["A1", "x1", "x2"]) == {"a1": ("m-a1", True)}
    assert await memory.lookup("account", ["a1", "X1", "a3"]) == {
        "a1": ("m-a1", True),
        "a3": ("m-a3", True),
    }
    assert calls.looked_up == [("account", ["A1", "x1", "x2"]), ("account", ["a3"])]
    assert await memory.probe("account", ["x1", "x2", "y9"]) == {"x1": True, "x2": False}
    assert await memory.probe("account", ["X2", "y9"]) == {"x2": False}
    assert calls.probed == [("account", ["x1", "x2", "y9"])]
    assert await memory.lookup("systemuser", ["a1"]) == {"a1": ("m-a1", True)}
    assert calls.looked_up[-1] == ("systemuser", ["a1"])


async def test_targets_of_the_own_entity_are_always_asked_for() -> None:
    """The stream's own pages create them, so an earlier answer may be out of date."""
    calls = Recorder()
    memory = JobLinkMemory("account", calls.lookup, calls.probe)
    for _ in range(2):
        await memory.lookup("account", ["a1"])
        await memory.probe("account", ["x1"])
    assert calls.looked_up == [("account", ["a1"])] * 2
    assert calls.probed == [("account", ["x1"])] * 2
