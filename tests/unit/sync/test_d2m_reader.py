"""The Dataverse change reader: how a stored cursor is read again, and lookup-table freshness."""

from __future__ import annotations

import httpx
import pytest

from shared.sync.config import load_config
from shared.sync.d2m.reader import REFERENCE_TABLE_TTL, DataverseChangeReader, is_delta_link
from tests.unit.dynamics.fakes import API, Script, json_response, make_client

DELTA = API + "contacts?$select=contactid&$deltatoken=919042%2108%2f22%2f2017%2008%3a10%3a44"
NEXT = API + "contacts?$select=contactid&$skiptoken=%3Ccookie%20pagenumber=%222%22%20/%3E"
ROLES = API + "connectionroles"


def test_a_delta_link_is_told_apart_from_a_next_link() -> None:
    """By the documented query parameter names ($deltatoken vs $skiptoken), encoded or not."""
    assert is_delta_link(DELTA)
    assert is_delta_link(DELTA.replace("$deltatoken", "%24deltatoken"))
    assert not is_delta_link(NEXT)


@pytest.mark.parametrize(
    "reply",
    [httpx.Response(200, content=b""), json_response(200, {}), json_response(200, {"value": []})],
    ids=["empty-body", "empty-object", "empty-list"],
)
async def test_a_quiet_delta_without_a_new_link_keeps_the_stored_one(
    reply: httpx.Response,
) -> None:
    """Defect 7: "an empty JSON response" when nothing changed must not fail the stream; the
    delta link read from stays the place to resume, and the read counts as done."""
    client, _ = make_client(Script([reply]))
    spec = load_config().entity["contact"]
    async with client:
        batch = await DataverseChangeReader(client).read(spec, DELTA, 5000)
    assert (batch.records, batch.deleted_ids, batch.cursor, batch.done) == ([], [], DELTA, True)


async def test_lookup_tables_are_read_again_after_their_ttl() -> None:
    """Defect 7: a connection role added in Dynamics is seen within minutes, not at restart."""
    first = json_response(200, {"value": [{"connectionroleid": _id(1), "name": "Buyer"}]})
    second = json_response(
        200,
        {"value": [{"connectionroleid": _id(1), "name": "Buyer"},
                   {"connectionroleid": _id(2), "name": "Champion"}]},
    )  # fmt: skip
    script = Script([first, second])
    client, clock = make_client(script)
    async with client:
        reader = DataverseChangeReader(client, clock)
        args = ("connectionrole", "connectionroles", "connectionroleid", "name")
        assert await reader.reference_table(*args) == {_id(1): "Buyer"}
        clock.advance(REFERENCE_TABLE_TTL - 1)
        assert await reader.reference_table(*args) == {_id(1): "Buyer"}  # cached
        assert len(script.requests) == 1
        clock.advance(2)
        assert (await reader.reference_table(*args))[_id(2)] == "Champion"
        assert len(script.requests) == 2


def _id(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"
