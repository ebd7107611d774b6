"""A process that only makes Marketo calls through the shared budget, until killed.

``python -m tests.integration.budget.budget_worker PREFIX`` with the Marketo and storage
settings in the environment: four callers alternate a 5-lead Sync Leads and a Get Leads by
Filter Type, for ever (the test SIGKILLs or SIGTERMs it).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import sys
import uuid

from shared.marketo import MarketoClient
from shared.marketo.shared_governor import SharedGovernor
from shared.settings import MarketoSettings, StorageSettings, load
from shared.state.store import StateStore
from shared.storage import StorageConnection


async def caller(client: MarketoClient, tag: str) -> None:
    for turn in itertools.count():
        batch = [f"{tag}-{turn}-{i}@worker.example.com" for i in range(5)]
        if turn % 2 == 0:
            await client.leads.sync([{"email": e} for e in batch])
        else:
            await client.leads.get_by_filter("email", batch, fields=["id"])


async def main(prefix: str) -> None:
    environ = dict(os.environ)
    settings = load(MarketoSettings, environ)
    store = StateStore.from_connection(
        StorageConnection.from_settings(load(StorageSettings, environ)), table_prefix=prefix
    )
    async with MarketoClient(settings, governor=SharedGovernor(settings, store.budgets)) as c:
        tag = uuid.uuid4().hex[:6]
        await asyncio.gather(*(caller(c, f"{tag}{n}") for n in range(4)))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
