"""Batching by count and by bytes, order kept across splits, oversize records as failures."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.errors import ApiRequestError
from shared.marketo.batching import plan_batches
from shared.marketo.encoding import MAX_BODY_BYTES, encode_json
from shared.marketo.outcomes import parse_outcomes
from tests.unit.marketo.fakes import FakeMarketo, body_of, make_client

ENVELOPE = {"action": "createOrUpdate", "lookupField": "email"}


def _lead(i: int, padding: int = 0) -> dict[str, Any]:
    return {"email": f"person{i}@example.com", "firstName": "Ä" * padding}


def test_bodies_are_exactly_what_json_would_serialise() -> None:
    """The assembled body equals serialising the whole envelope, so measured size = sent size."""
    records = [_lead(i, padding=i) for i in range(7)]
    (batch,) = plan_batches(records, ENVELOPE).batches
    assert batch.body == encode_json({**ENVELOPE, "input": records})
    assert json.loads(batch.body)["input"] == records


def test_split_by_count_at_300() -> None:
    """701 records make batches of 300, 300 and 101, in input order."""
    plan = plan_batches([_lead(i) for i in range(701)], ENVELOPE)
    assert [len(b.indices) for b in plan.batches] == [300, 300, 101]
    assert [i for b in plan.batches for i in b.indices] == list(range(701))


def test_split_by_bytes_keeps_every_body_under_the_limit() -> None:
    """Records of ~100 kB each go about nine to a body; no body passes 1 MB."""
    records = [_lead(i, padding=50_000) for i in range(40)]  # "Ä" is 2 bytes in UTF-8
    plan = plan_batches(records, ENVELOPE)
    assert len(plan.batches) > 4
    assert all(len(b.body) <= MAX_BODY_BYTES for b in plan.batches)
    assert [i for b in plan.batches for i in b.indices] == list(range(40))
    # a batch is only cut when the next record would not fit
    for batch, following in zip(plan.batches, plan.batches[1:], strict=False):
        next_record = encode_json(records[following.indices[0]])
        assert len(batch.body) + 1 + len(next_record) > MAX_BODY_BYTES


def test_a_single_record_over_the_limit_is_reported_not_sent() -> None:
    """A record too big on its own is listed as oversize; its neighbours still batch."""
    records = [_lead(0), {"email": "big@example.com", "notes": "x" * MAX_BODY_BYTES}, _lead(2)]
    plan = plan_batches(records, ENVELOPE)
    assert list(plan.oversize) == [1]
    assert plan.oversize[1] > MAX_BODY_BYTES
    assert [b.indices for b in plan.batches] == [[0, 2]]


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=0, max_value=400), min_size=0, max_size=60),
    max_records=st.integers(min_value=1, max_value=7),
    max_bytes=st.integers(min_value=200, max_value=2_000),
)
def test_any_split_keeps_order_and_limits(
    sizes: list[int], max_records: int, max_bytes: int
) -> None:
    """For any records and limits: every record is in exactly one batch or oversize, batches
    are consecutive runs in input order, and every body respects both limits."""
    records = [{"k": i, "v": "y" * n} for i, n in enumerate(sizes)]
    plan = plan_batches(records, {"a": 1}, max_records=max_records, max_bytes=max_bytes)
    placed = [i for b in plan.batches for i in b.indices]
    assert sorted(placed + list(plan.oversize)) == list(range(len(records)))
    assert placed == sorted(placed)
    for batch in plan.batches:
        assert 1 <= len(batch.indices) <= max_records
        assert len(batch.body) <= max_bytes
        assert json.loads(batch.body)["input"] == [records[i] for i in batch.indices]


def _echo_leads(request: httpx.Request) -> httpx.Response:
    """Marketo's answer to Sync Leads: one result per input, skipped when email is missing."""
    results = []
    for record in body_of(request)["input"]:
        if "email" in record:
            results.append({"id": 1000 + int(record["n"]), "status": "created"})
        else:
            results.append(
                {"status": "skipped", "reasons": [{"code": "1002", "message": "Missing email"}]}
            )
    return httpx.Response(200, json={"requestId": "x", "success": True, "result": results})


async def test_sync_results_come_back_in_input_order_across_splits() -> None:
    """650 leads (one oversize, some skipped) → 3 requests; outcomes line up with the input."""
    records: list[dict[str, Any]] = []
    for n in range(650):
        record: dict[str, Any] = {"n": n}
        if n % 7:
            record["email"] = f"p{n}@example.com"
        records.append(record)
    records[400]["notes"] = "z" * MAX_BODY_BYTES
    fake = FakeMarketo().on("POST", "/rest/v1/leads.json", _echo_leads)
    async with make_client(fake) as client:
        outcomes = await client.leads.sync(records, lookup_field="email")
    sent = fake.rest_requests()
    assert [len(body_of(r)["input"]) for r in sent] == [300, 300, 49]
    assert all(body_of(r)["action"] == "createOrUpdate" for r in sent)
    assert [o.index for o in outcomes] == list(range(650))
    for n, outcome in enumerate(outcomes):
        if n == 400:
            assert outcome.status == "skipped" and outcome.reason_codes == ("413",)
        elif n % 7:
            assert outcome.status == "created" and outcome.marketo_id == 1000 + n
        else:
            assert outcome.status == "skipped" and outcome.reasons[0].code == "1002"


def test_outcomes_are_placed_by_seq() -> None:
    """With seq present, a result listed out of order still lands on its record."""
    result = [
        {"seq": 1, "status": "created", "marketoGUID": "g-b"},
        {"seq": 0, "status": "updated", "marketoGUID": "g-a"},
        {"seq": 2, "status": "skipped", "reasons": [{"code": "1036", "message": "Duplicate"}]},
    ]
    outcomes = parse_outcomes(result, [10, 11, 12], what="companies.sync")
    assert [(o.index, o.status, o.marketo_guid, o.seq) for o in outcomes] == [
        (10, "updated", "g-a", 0),
        (11, "created", "g-b", 1),
        (12, "skipped", None, 2),
    ]
    assert not outcomes[2].ok and outcomes[2].reasons[0].message == "Duplicate"


def test_mismatched_result_count_is_refused() -> None:
    """Fewer results than records cannot be paired safely: ApiRequestError."""
    with pytest.raises(ApiRequestError, match="2 results for 3 records"):
        parse_outcomes([{"status": "created"}] * 2, [0, 1, 2], what="leads.sync")


def test_unexpected_status_becomes_a_skip_with_a_reason() -> None:
    """An unknown status is never taken for success."""
    (outcome,) = parse_outcomes([{"id": 5, "status": "weird"}], [0], what="leads.sync")
    assert outcome.status == "skipped" and outcome.marketo_id == 5
    assert outcome.reason_codes == ("status",)
