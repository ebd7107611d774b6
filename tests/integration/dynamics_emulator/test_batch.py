"""$batch: multipart parsing, change sets, Content-ID references, error handling."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

import httpx

from emulators.dynamics.runner import EmulatorHandle

KID = '{"lastname": "Kid", "parentcustomerid_account@odata.bind": "$1"}'
BIND_TO_1 = '{"parentcustomerid_account@odata.bind": "$1"}'


@dataclass
class Part:
    """One parsed response part."""

    status: int
    headers: dict[str, str]
    body: str
    content_id: str | None


def _request(
    method: str, url: str, body: str | None = None, content_id: str | None = None, headers: str = ""
) -> str:
    lines = ["Content-Type: application/http", "Content-Transfer-Encoding: binary"]
    if content_id:
        lines.append(f"Content-ID: {content_id}")
    lines += ["", f"{method} {url} HTTP/1.1"]
    if body is not None:
        lines.append("Content-Type: application/json; type=entry")
    if headers:
        lines.append(headers)
    lines.append("")
    return "\r\n".join(lines) + "\r\n" + (body or "") + "\r\n"


def _batch(parts: list[str | list[str]], boundary: str) -> str:
    out = []
    for part in parts:
        if isinstance(part, list):
            changeset = f"changeset_{uuid.uuid4()}"
            inner = "".join(f"--{changeset}\r\n{p}" for p in part) + f"--{changeset}--\r\n"
            header = f'Content-Type: multipart/mixed; boundary="{changeset}"'
            out.append(f"--{boundary}\r\n{header}\r\n\r\n{inner}")
        else:
            out.append(f"--{boundary}\r\n{part}")
    return "".join(out) + f"--{boundary}--\r\n"


def _parse(response: httpx.Response) -> list[Part]:
    """Flatten the multipart response (change sets included) into parts, in order."""
    boundary = re.search(r"boundary=([^;\s]+)", response.headers["Content-Type"])
    assert boundary is not None
    return _parse_body(response.text, boundary.group(1))


def _parse_body(text: str, boundary: str) -> list[Part]:
    parts: list[Part] = []
    for chunk in text.split(f"--{boundary}")[1:]:
        if chunk.startswith("--"):
            break
        head, _, rest = chunk.strip("\r\n").partition("\r\n\r\n")
        inner = re.search(r"boundary=([^;\s]+)", head)
        if "multipart/mixed" in head and inner is not None:
            parts.extend(_parse_body(rest, inner.group(1)))
            continue
        content_id = re.search(r"Content-ID: (\S+)", head)
        status_line, _, after = rest.partition("\r\n")
        header_text, _, body = after.partition("\r\n\r\n")
        headers = dict(line.split(": ", 1) for line in header_text.split("\r\n") if ": " in line)
        parts.append(
            Part(
                int(status_line.split()[1]),
                headers,
                body.strip(),
                content_id.group(1) if content_id else None,
            )
        )
    return parts


def _post_batch(
    api: httpx.Client, body: str, boundary: str, quoted: bool = True, prefer: str | None = None
) -> httpx.Response:
    content_type = (
        f'multipart/mixed; boundary="{boundary}"'
        if quoted
        else f"multipart/mixed;boundary={boundary}"
    )
    headers = {"Content-Type": content_type}
    if prefer:
        headers["Prefer"] = prefer
    return api.post("$batch", content=body.encode(), headers=headers)


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
