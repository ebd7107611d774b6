"""Dependency order of entities: what must reach Marketo before what (reference A.10)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from shared.errors import ConfigurationError


def dependency_order(depends_on: Mapping[str, Sequence[str]]) -> tuple[str, ...]:
    """Order names so every entity comes after its dependencies.

    Ties keep the mapping's own order, so the result is stable for a given file.

    Raises:
        ConfigurationError: the dependencies form a cycle (the cycle is named).
    """
    placed: dict[str, None] = {}
    visiting: list[str] = []

    def visit(name: str) -> None:
        if name in placed:
            return
        if name in visiting:
            cycle = [*visiting[visiting.index(name) :], name]
            raise ConfigurationError("mapping file has a dependency cycle: " + " -> ".join(cycle))
        visiting.append(name)
        for dependency in depends_on.get(name, ()):
            visit(dependency)
        visiting.pop()
        placed[name] = None

    for name in depends_on:
        visit(name)
    return tuple(placed)


def dependents_of(name: str, depends_on: Mapping[str, Sequence[str]]) -> tuple[str, ...]:
    """Entities that list ``name`` among their direct dependencies."""
    return tuple(other for other, deps in depends_on.items() if name in deps)
