"""$batch: multipart parsing, change sets, Content-ID references, error handling."""

from __future__ import annotations

import uuid

import httpx

from emulators.dynamics.runner import EmulatorHandle
from tests.integration.dynamics_emulator.batch_parts import batch_body as _batch
from tests.integration.dynamics_emulator.batch_parts import batch_request as _request
from tests.integration.dynamics_emulator.batch_parts import parse_batch_response as _parse
from tests.integration.dynamics_emulator.batch_parts import post_batch as _post_batch

KID = '{"lastname": "Kid", "parentcustomerid_account@odata.bind": "$1"}'
BIND_TO_1 = '{"parentcustomerid_account@odata.bind": "$1"}'


def test_batch_of_creates_and_a_get_answers_in_order(
    dyn: EmulatorHandle, api: httpx.Client
) -> None:
    """Independent requests run in order; creates answer 204 with Location and OData-EntityId."""
    boundary = f"batch_{uuid.uuid4()}"
    body = _batch(
        [
            _request("POST", "/api/data/v9.2/accounts", '{"name": "One"}'),
            _request("POST", f"{dyn.api_url}/accounts", '{"name": "Two"}'),
            _request("GET", "/api/data/v9.2/accounts?$select=name&$orderby=name"),
        ],
        boundary,
    )
    response = _post_batch(api, body, boundary)
    assert response.status_code == 200
    parts = _parse(response)
    assert [p.status for p in parts] == [204, 204, 200]
    assert parts[0].headers["OData-EntityId"] == parts[0].headers["Location"]
    assert "odata.streaming=true" in parts[2].headers["Content-Type"]
    assert '"name":"One"' in parts[2].body and '"name":"Two"' in parts[2].body
    counts = dyn.control.requests()
    assert counts["by_resource"]["POST $batch"] == 1
    assert counts["batch_parts"] == {"POST accounts": 2, "GET accounts": 1}


def test_changeset_with_content_id_references(dyn: EmulatorHandle, api: httpx.Client) -> None:
    """$1 works in @odata.bind and as a request URL inside the change set."""
    boundary = "batch_AAA123"
    body = _batch(
        [
            [
                _request("POST", "/api/data/v9.2/accounts", '{"name": "Parent"}', content_id="1"),
                _request("POST", "/api/data/v9.2/contacts", KID, content_id="2"),
                _request("PATCH", "$1", '{"telephone1": "555"}', content_id="3"),
            ]
        ],
        boundary,
    )  # fmt: skip
    response = _post_batch(api, body, boundary, quoted=False)
    assert response.status_code == 200, response.text
    parts = _parse(response)
    assert [(p.status, p.content_id) for p in parts] == [(204, "1"), (204, "2"), (204, "3")]
    account = api.get("accounts", params={"$select": "name,telephone1"}).json()["value"][0]
    assert account["telephone1"] == "555"
    contact = api.get("contacts").json()["value"][0]
    assert contact["_parentcustomerid_value"] == account["accountid"]


def test_failed_changeset_rolls_back_everything(dyn: EmulatorHandle, api: httpx.Client) -> None:
    """One failing request undoes the change set's earlier creates."""
    boundary = "batch_rollback"
    body = _batch(
        [
            [
                _request(
                    "POST", "/api/data/v9.2/accounts", '{"name": "Rolled back"}', content_id="1"
                ),
                _request(
                    "POST",
                    "/api/data/v9.2/contacts",
                    '{"firstname": "' + "x" * 60 + '"}',
                    content_id="2",
                ),
            ]
        ],
        boundary,
    )
    response = _post_batch(api, body, boundary)
    assert response.status_code == 400
    parts = _parse(response)
    assert len(parts) == 1 and parts[0].status == 400
    assert '"code":"0x80044331"' in parts[0].body
    assert parts[0].headers["REQ_ID"]
    assert api.get("accounts").json()["value"] == []


def test_without_continue_on_error_the_batch_stops_at_the_first_failure(api: httpx.Client) -> None:
    """400 overall; the failing part is last; later requests are not run."""
    boundary = "batch_stop"
    body = _batch(
        [
            _request("POST", "/api/data/v9.2/leads", '{"lastname": "ok"}'),
            _request("POST", "/api/data/v9.2/leads", '{"lastname": "' + "y" * 51 + '"}'),
            _request("POST", "/api/data/v9.2/leads", '{"lastname": "never"}'),
        ],
        boundary,
    )
    response = _post_batch(api, body, boundary)
    assert response.status_code == 400
    parts = _parse(response)
    assert [p.status for p in parts] == [204, 400]
    names = [r["lastname"] for r in api.get("leads").json()["value"]]
    assert names == ["ok"]


def test_with_continue_on_error_every_request_runs(api: httpx.Client) -> None:
    """200 overall and one part per request, failures included."""
    boundary = "batch_continue"
    body = _batch(
        [
            _request("POST", "/api/data/v9.2/leads", '{"lastname": "' + "y" * 51 + '"}'),
            _request("POST", "/api/data/v9.2/leads", '{"lastname": "two"}'),
            _request("DELETE", "/api/data/v9.2/leads(00000000-0000-0000-0000-000000000042)"),
            _request("POST", "/api/data/v9.2/leads", '{"lastname": "four"}'),
        ],
        boundary,
    )
    response = _post_batch(api, body, boundary, prefer="odata.continue-on-error")
    assert response.status_code == 200
    assert [p.status for p in _parse(response)] == [400, 204, 404, 204]
    assert len(api.get("leads").json()["value"]) == 2


def test_representation_and_upsert_inside_a_batch(api: httpx.Client) -> None:
    """Per-part Prefer headers apply; alternate-key upserts work in batches."""
    boundary = "batch_rep"
    body = _batch(
        [
            _request(
                "POST",
                "/api/data/v9.2/accounts",
                '{"name": "Rep"}',
                headers="Prefer: return=representation",
            ),
            _request(
                "PATCH",
                "/api/data/v9.2/contacts(emailaddress1='b@example.com')",
                '{"lastname": "B"}',
            ),
        ],
        boundary,
    )
    parts = _parse(_post_batch(api, body, boundary))
    assert parts[0].status == 201 and '"name":"Rep"' in parts[0].body
    assert parts[1].status == 204
    assert parts[1].headers["OData-EntityId"].endswith("contacts(emailaddress1='b@example.com')")


def test_batch_rules_limits_nesting_get_in_changeset_and_forward_references(
    api: httpx.Client,
) -> None:
    """More than 1000 requests, nested batches, GET in a change set and $n before use are 400s."""
    boundary = "batch_rules"
    too_many = _batch([_request("GET", "/api/data/v9.2/WhoAmI") for _ in range(1001)], boundary)
    assert _post_batch(api, too_many, boundary).status_code == 400
    thousand = _batch([_request("GET", "/api/data/v9.2/WhoAmI") for _ in range(1000)], boundary)
    assert _post_batch(api, thousand, boundary).status_code == 200
    nested = _batch([_request("POST", "/api/data/v9.2/$batch", "")], boundary)
    nested_parts = _parse(_post_batch(api, nested, boundary, prefer="odata.continue-on-error"))
    assert nested_parts[0].status == 400
    get_in_changeset = _batch([[_request("GET", "/api/data/v9.2/accounts")]], boundary)
    assert _post_batch(api, get_in_changeset, boundary).status_code == 400
    forward = _batch(
        [[_request("POST", "/api/data/v9.2/contacts", BIND_TO_1, content_id="2"),
          _request("POST", "/api/data/v9.2/accounts", '{"name": "late"}', content_id="1")]],
        boundary,
    )  # fmt: skip
    response = _post_batch(api, forward, boundary)
    assert response.status_code == 400
    assert "Content-ID Reference: '$1' does not exist in the batch context." in response.text
    assert (
        api.post("$batch", content=b"x", headers={"Content-Type": "application/json"}).status_code
        == 400
    )
