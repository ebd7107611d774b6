"""Change tracking: initial load, delta links, deletes, paging, unsupported options, expiry."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

import httpx
import pytest

from emulators.dynamics.runner import EmulatorHandle

TRACK = {"Prefer": "odata.track-changes"}


def _read_all(
    api: httpx.Client, url: str, page_size: int = 5000
) -> tuple[list[dict[str, Any]], str, int]:
    """Follow nextLinks; return every row, the deltaLink and the number of pages."""
    rows: list[dict[str, Any]] = []
    pages = 0
    next_url: str | None = url
    delta = ""
    while next_url:
        response = api.get(
            next_url, headers={"Prefer": f"odata.track-changes,odata.maxpagesize={page_size}"}
        )
        assert response.status_code == 200, response.text
        assert "odata.track-changes" in response.headers["Preference-Applied"]
        body = response.json()
        pages += 1
        rows.extend(body["value"])
        next_url = body.get("@odata.nextLink")
        if next_url:
            assert "@odata.deltaLink" not in body  # only on the last page (change tracking docs)
        else:
            delta = body["@odata.deltaLink"]
    return rows, delta, pages


def _token_of(delta_link: str) -> str:
    return unquote(delta_link.split("$deltatoken=")[1])


def test_initial_load_pages_and_gives_a_delta_link_on_the_last_page(
    dyn: EmulatorHandle, api: httpx.Client
) -> None:
    """Every row once, in pages; the deltaLink carries <version>!<MM/dd/yyyy HH:mm:ss>."""
    dyn.control.seed(counts={"account": 12})
    rows, delta, pages = _read_all(api, "accounts?$select=name,accountnumber", page_size=5)
    assert pages == 3
    assert len({r["accountid"] for r in rows}) == 12
    assert set(rows[0]) == {"@odata.etag", "name", "accountnumber", "accountid"}
    assert delta.startswith(f"{dyn.api_url}/accounts?$select=name,accountnumber&$deltatoken=")
    assert re.fullmatch(r"\d+!\d\d/\d\d/\d{4} \d\d:\d\d:\d\d", _token_of(delta))
    assert "%21" in delta  # the token is URL-encoded in the link


def test_delta_returns_new_updated_and_deleted_rows(dyn: EmulatorHandle, api: httpx.Client) -> None:
    """New and updated rows look alike (latest state once); deletes are $deletedEntity."""
    first = api.post("accounts", json={"name": "Keep", "telephone1": "1"}).headers["OData-EntityId"]
    gone = api.post("accounts", json={"name": "Gone"}).headers["OData-EntityId"]
    _, delta, _ = _read_all(api, "accounts?$select=name,telephone1")
    api.patch(first.split("/v9.2/")[1], json={"telephone1": "2"})
    api.patch(first.split("/v9.2/")[1], json={"telephone1": "3"})
    api.delete(gone.split("/v9.2/")[1])
    new_id = api.post("accounts", json={"name": "New"}).headers["OData-EntityId"][-37:-1]
    flash = api.post("accounts", json={"name": "Flash"}).headers["OData-EntityId"]
    api.delete(flash.split("/v9.2/")[1])
    response = api.get(delta, headers=TRACK)
    body = response.json()
    assert body["@odata.context"].endswith("#accounts(name,telephone1)/$delta")
    changed = [r for r in body["value"] if "reason" not in r]
    deleted = [r for r in body["value"] if r.get("reason") == "deleted"]
    assert [(r["name"], r["telephone1"]) for r in changed] == [("Keep", "3"), ("New", None)]
    assert changed[1]["accountid"] == new_id
    assert {d["id"] for d in deleted} == {gone[-37:-1], flash[-37:-1]}
    assert set(deleted[0]) == {"@odata.context", "id", "reason"}
    assert deleted[0]["@odata.context"].endswith("/$metadata#accounts/$deletedEntity")
    assert body["value"].index(deleted[0]) > body["value"].index(changed[-1])  # deletes last
    again = api.get(body["@odata.deltaLink"], headers=TRACK).json()
    assert again["value"] == []
    assert again["@odata.deltaLink"]


def test_delta_pages_without_losing_rows_that_change_between_pages(
    dyn: EmulatorHandle, api: httpx.Client
) -> None:
    """A delta larger than a page pages by version; rows changed mid-paging come next time."""
    dyn.control.seed(counts={"contact": 10})
    _, delta, _ = _read_all(api, "contacts?$select=lastname")
    ids = [r["contactid"] for r in dyn.control.records("contact")]
    for record_id in ids:
        api.patch(f"contacts({record_id})", json={"jobtitle": "changed"})
    first_page = api.get(
        delta, headers={"Prefer": "odata.track-changes,odata.maxpagesize=4"}
    ).json()
    assert len(first_page["value"]) == 4
    api.patch(f"contacts({first_page['value'][0]['contactid']})", json={"jobtitle": "again"})
    api.patch(f"contacts({ids[-1]})", json={"jobtitle": "again"})
    rows = list(first_page["value"])
    rows_rest, next_delta, _ = _read_all(api, first_page["@odata.nextLink"], page_size=4)
    rows.extend(rows_rest)
    seen = [r["contactid"] for r in rows]
    assert len(seen) == len(set(seen))
    later = api.get(next_delta, headers=TRACK).json()["value"]
    assert set(seen) | {r["contactid"] for r in later} == set(ids)
    assert ids[-1] in {r["contactid"] for r in later}


@pytest.mark.parametrize(
    "option", ["$filter=name eq 'x'", "$orderby=name", "$top=5", "$expand=primarycontactid"]
)
def test_query_options_are_refused_under_track_changes(api: httpx.Client, option: str) -> None:
    """$filter/$orderby/$expand/$top give the documented message under track-changes."""
    name = option.split("=")[0]
    response = api.get(f"accounts?{option}", headers=TRACK)
    assert response.status_code == 400
    assert response.json()["error"]["message"] == (
        f'The "{name}" query parameter isn\'t supported when Change Tracking is enabled.'
    )


def test_table_without_change_tracking_gives_a_descriptive_400(
    dyn: EmulatorHandle, api: httpx.Client
) -> None:
    """Our documented choice: track-changes on a table without it is a 400 naming the table."""
    dyn.control.set_change_tracking("new_project", False)
    response = api.get("new_projects", headers=TRACK)
    assert response.status_code == 400
    assert (
        "Change tracking is not enabled for the entity 'new_project'"
        in response.json()["error"]["message"]
    )
    organizations = api.get("organizations", headers=TRACK)
    assert organizations.status_code == 400


def test_token_older_than_expirechangetrackingindays_expires(
    dyn: EmulatorHandle, api: httpx.Client
) -> None:
    """After the organization's retention the token answers 0x80044352; a full read recovers."""
    api.post("leads", json={"lastname": "L"})
    _, delta, _ = _read_all(api, "leads?$select=lastname")
    dyn.control.advance_clock(days=6)
    assert api.get(delta, headers=TRACK).status_code == 200
    dyn.control.advance_clock(days=1, seconds=5)
    expired = api.get(delta, headers=TRACK)
    assert expired.status_code == 400
    assert expired.json()["error"] == {
        "code": "0x80044352",
        "message": (
            "Version stamp associated with the client has expired. Please perform a full sync."
        ),
    }
    rows, fresh, _ = _read_all(api, "leads?$select=lastname")
    assert len(rows) == 1
    assert api.get(fresh, headers=TRACK).status_code == 200


def test_retention_follows_the_organization_column(dyn: EmulatorHandle, api: httpx.Client) -> None:
    """expirechangetrackingindays is read at run time (Dataverse docs, "Use change tracking to
    synchronize data with external systems")."""
    _, delta, _ = _read_all(api, "leads")
    dyn.control.set_organization(expirechangetrackingindays=30)
    dyn.control.advance_clock(days=20)
    assert api.get(delta, headers=TRACK).status_code == 200
    dyn.control.advance_clock(days=11)
    assert api.get(delta, headers=TRACK).status_code == 400


def test_forced_expiry_invalidates_outstanding_tokens_only(
    dyn: EmulatorHandle, api: httpx.Client
) -> None:
    """The control API can expire every token issued so far; new tokens work."""
    _, delta, _ = _read_all(api, "contacts")
    dyn.control.expire_change_tracking()
    assert api.get(delta, headers=TRACK).json()["error"]["code"] == "0x80044352"
    _, fresh, _ = _read_all(api, "contacts")
    assert api.get(fresh, headers=TRACK).status_code == 200


def test_direct_writes_are_seen_by_change_tracking(dyn: EmulatorHandle, api: httpx.Client) -> None:
    """Rows written through the control API show up in the next delta."""
    _, delta, _ = _read_all(api, "opportunities?$select=name")
    dyn.control.put_records("opportunity", [{"name": "Direct"}])
    rows = api.get(delta, headers=TRACK).json()["value"]
    assert [r["name"] for r in rows] == ["Direct"]


def test_malformed_delta_token_is_400(api: httpx.Client) -> None:
    """A token we could not have issued is rejected."""
    response = api.get("accounts?$deltatoken=garbage", headers=TRACK)
    assert response.status_code == 400
