"""Control API: seeding, direct rows, counters, environment copy; the subprocess runner."""

from __future__ import annotations

import re
from urllib.parse import unquote

import httpx

from emulators.dynamics.runner import EmulatorHandle, run_dynamics_emulator

from .conftest import ODATA_HEADERS

TRACK = {"Prefer": "odata.track-changes"}


def test_seed_is_deterministic_and_realistic(dyn: EmulatorHandle) -> None:
    """Same seed, same rows and GUIDs; links, shares of unsynced and bad rows are present."""
    rows = dyn.control.seed(200, seed=5, no_sync_share=0.2, bad_data_share=0.2)
    assert (
        rows["account"]
        == rows["contact"]
        == rows["lead"]
        == rows["opportunity"]
        == rows["new_project"]
        == 200
    )
    assert rows["systemuser"] >= 4 and rows["team"] >= 2 and rows["connection"] > 0
    contacts = dyn.control.records("contact")
    ids = [c["contactid"] for c in contacts]
    dyn.control.reset()
    dyn.control.seed(200, seed=5, no_sync_share=0.2, bad_data_share=0.2)
    assert [c["contactid"] for c in dyn.control.records("contact")] == ids
    flags = [c["new_synctomkto"] for c in contacts]
    assert 20 <= flags.count(False) <= 60 and None in flags and True in flags
    emails = [c["emailaddress1"] for c in contacts]
    invalid = [e for e in emails if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[a-z]+", e)]
    assert invalid, "some invalid e-mail addresses are seeded"
    assert any(len(e) == 100 for e in emails), "some values are at the column's maximum length"
    linked = [c for c in contacts if c["_parentcustomerid_value"]]
    assert linked and all(
        c["_parentcustomerid_value@Microsoft.Dynamics.CRM.lookuplogicalname"] == "account"
        for c in linked
    )
    opportunities = dyn.control.records("opportunity")
    assert {
        o["_customerid_value@Microsoft.Dynamics.CRM.lookuplogicalname"] for o in opportunities
    } == {"account", "contact"}
    stakeholders = [c for c in dyn.control.records("connection") if c["ismaster"]]
    assert all(
        c["_record1id_value@Microsoft.Dynamics.CRM.lookuplogicalname"] == "opportunity"
        for c in stakeholders
    )
    owners = {
        a["_ownerid_value@Microsoft.Dynamics.CRM.lookuplogicalname"]
        for a in dyn.control.records("account")
    }
    assert owners == {"systemuser", "team"}


def test_seeded_rows_pass_the_web_api_validation(dyn: EmulatorHandle, api: httpx.Client) -> None:
    """Seeded values respect Dataverse's own limits: writing them back succeeds."""
    dyn.control.seed(counts={"contact": 60}, seed=3, bad_data_share=0.5)
    for row in dyn.control.records("contact"):
        body = {
            k: row[k] for k in ("firstname", "lastname", "jobtitle", "description", "mobilephone")
        }
        response = api.patch(f"contacts({row['contactid']})", json=body, headers={"If-Match": "*"})
        assert response.status_code == 204, response.text


def test_direct_record_access_bypasses_limits(dyn: EmulatorHandle, api: httpx.Client) -> None:
    """Control reads/writes work while the Web API is throttled and are not counted."""
    dyn.control.set_limits(requests_per_window=1)
    assert api.get("WhoAmI").status_code == 200
    assert api.get("WhoAmI").status_code == 429
    ids = dyn.control.put_records("contact", [{"lastname": f"Bulk {i}"} for i in range(1000)])
    assert len(ids) == 1000
    row = dyn.control.record("contact", ids[0])
    assert row["lastname"] == "Bulk 0" and row["fullname"] == "Bulk 0"
    dyn.control.put_records("contact", [{"contactid": ids[0], "jobtitle": "Merged"}])
    merged = dyn.control.record("contact", ids[0])
    assert merged["lastname"] == "Bulk 0" and merged["jobtitle"] == "Merged"
    assert merged["versionnumber"] > row["versionnumber"]
    dyn.control.delete_record("contact", ids[1])
    assert len(dyn.control.records("contact")) == 999
    assert dyn.control.requests()["total"] == 2


def test_request_counters(dyn: EmulatorHandle, api: httpx.Client) -> None:
    """Counts by method and path, by resource and by status."""
    api.get("accounts")
    api.get("accounts", params={"$top": "1"})
    api.post("accounts", json={"name": "c"})
    api.get("accounts(00000000-0000-0000-0000-000000000000)")
    counts = dyn.control.requests()
    assert counts["by_resource"] == {"GET accounts": 3, "POST accounts": 1}
    assert counts["by_path"]["GET /api/data/v9.2/accounts"] == 2
    assert counts["by_status"] == {"200": 2, "204": 1, "404": 1}
    dyn.control.clear_requests()
    assert dyn.control.requests()["total"] == 0


def test_environment_copy_replaces_data_and_invalidates_delta_tokens(
    dyn: EmulatorHandle, api: httpx.Client
) -> None:
    """Source GUIDs kept, organization id and user id change, old delta tokens expire."""
    dyn.control.seed(counts={"account": 5}, seed=1)
    before = api.get("WhoAmI").json()
    delta = api.get("accounts", headers=TRACK).json()["@odata.deltaLink"]
    with run_dynamics_emulator(seed=99, records=8) as production:
        snapshot = production.control.snapshot()
        source_ids = [r["accountid"] for r in production.control.records("account")]
    result = dyn.control.copy_environment(snapshot=snapshot)
    assert result["rows"]["account"] == 8
    assert [r["accountid"] for r in dyn.control.records("account")] == source_ids
    after = api.get("WhoAmI").json()
    assert after["OrganizationId"] != before["OrganizationId"]
    assert after["UserId"] != before["UserId"]
    org = api.get("organizations").json()["value"][0]
    assert org["organizationid"] == after["OrganizationId"]
    expired = api.get(delta, headers=TRACK)
    assert expired.status_code == 400 and expired.json()["error"]["code"] == "0x80044352"
    fresh = api.get("accounts", headers=TRACK).json()
    assert len(fresh["value"]) == 8
    assert re.search(r"\d+!", unquote(fresh["@odata.deltaLink"]))
    assert api.get(fresh["@odata.deltaLink"], headers=TRACK).status_code == 200


def test_environment_copy_from_a_seeded_source(dyn: EmulatorHandle, api: httpx.Client) -> None:
    """A copy can also come from a generated source environment."""
    result = dyn.control.copy_environment(source_seed=4, records_per_table=3)
    assert result["rows"]["contact"] == 3
    assert len(api.get("contacts").json()["value"]) == 3


def test_subprocess_runner_and_cli(dyn: EmulatorHandle) -> None:
    """``dmsync emulator dynamics`` in a child process: one listening line, HTTPS, credentials."""
    with run_dynamics_emulator(mode="subprocess", records=5) as child:
        assert child.pid is not None
        assert re.fullmatch(r"https://127\.0\.0\.1:\d+", child.base_url)
        with child.http_client() as http:
            token = child.fetch_token(http)
            rows = http.get(
                f"{child.api_url}/accounts",
                headers={**ODATA_HEADERS, "Authorization": f"Bearer {token}"},
            ).json()["value"]
        assert len(rows) == 5
        assert child.control.info()["base_url"] == child.base_url
