"""Which source environment an instance is bound to, and how a copied one is recognised."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class SourceIdentity:
    """Who and where the Dynamics side is; a change means the environment was copied."""

    organization_id: str
    organization_name: str | None = None
    organization_created_on: str | None = None
    user_id: str | None = None


class IdentitySource(Protocol):
    """The side whose identity the scheduler checks on every tick."""

    async def identity(self) -> SourceIdentity:
        """The organization and user this client talks to."""
        ...


def identity_signature(identity: SourceIdentity) -> dict[str, str | None]:
    """The parts of an identity that must not change under a running integration."""
    return {
        "organization_id": identity.organization_id,
        "organization_created_on": identity.organization_created_on,
    }


def environment_change(recorded: Mapping[str, str | None], seen: SourceIdentity) -> str | None:
    """Why ``seen`` is not the recorded environment, or ``None`` if it is."""
    now = identity_signature(seen)
    changed = [k for k, v in recorded.items() if v is not None and now.get(k) != v]
    if not changed:
        return None
    parts = ", ".join(f"{k} was {recorded[k]} and is now {now.get(k)}" for k in changed)
    return (
        f"the Dynamics environment now reports a different organization ({parts}): it looks "
        "copied or refreshed (a sandbox refresh). Sync is suspended so that no data from the "
        "wrong environment reaches Marketo. If this is intended, re-link the instance with "
        "`dmsync instance relink`."
    )
