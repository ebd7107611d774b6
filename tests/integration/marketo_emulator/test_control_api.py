"""The control API: seeding, direct reads, reset, clock and configuration."""

from __future__ import annotations

import httpx

from emulators.marketo.runner import RunningMarketo
from tests.integration.marketo_emulator.helpers import ok, sync_leads


def test_seed_every_kind_and_read_it_back(mkto: RunningMarketo) -> None:
    created = mkto.control.seed(
        sales_persons=[{"externalSalesPersonId": "sp", "email": "sp@example.com"}],
        companies=[{"externalCompanyId": "co", "company": "Co"}],
        leads=[{"email": "a@example.com", "externalCompanyId": "co"}, {"email": "a@example.com"}],
        opportunities=[{"externalOpportunityId": "op", "name": "Op"}],
        custom_objects={"project_c": [{"dynamicsProjectId": "p1", "externalCompanyId": "co"}]},
    )
    assert len(created["leads"]) == 2  # duplicates allowed when seeding
    mkto.control.seed(
        opportunity_roles=[
            {"externalOpportunityId": "op", "leadId": created["leads"][0], "role": "Buyer"}
        ]
    )
    assert [c["company"] for c in mkto.control.records("companies")] == ["Co"]
    assert len(mkto.control.records("opportunities/roles")) == 1
    assert len(mkto.control.records("customobjects/project_c")) == 1
    assert mkto.control.records("salespersons")[0]["email"] == "sp@example.com"
    assert mkto.control.activities() == []  # seeding logs nothing unless asked


def test_seed_validates_fields(mkto: RunningMarketo) -> None:
    response = httpx.post(
        f"{mkto.base_url}/_emulator/seed", json={"leads": [{"email": "x", "nope": 1}]}
    )
    assert response.status_code == 400
    assert "1006" in response.json()["error"] or "1001" in response.json()["error"]


def test_100k_leads_seed_and_read_cheaply(mkto: RunningMarketo, rest: httpx.Client) -> None:
    ids = mkto.control.seed(generate_leads=100_000)["leads"]
    assert len(ids) == 100_000
    leads = mkto.control.leads()
    assert len(leads) == 100_000 and leads[-1]["email"] == "lead100000@example.com"
    page = mkto.control.leads(offset=10, limit=5)
    assert [lead["id"] for lead in page] == ids[10:15]
    body = ok(
        rest.get(
            "/rest/v1/leads.json",
            params={"filterType": "email", "filterValues": "lead77@example.com"},
        )
    )
    assert body["result"][0]["id"] == ids[76]


def test_reset_forgets_data_tokens_and_counters(mkto: RunningMarketo, rest: httpx.Client) -> None:
    sync_leads(rest, [{"email": "gone@example.com"}])
    mkto.control.reset()
    assert mkto.control.leads() == []
    assert mkto.control.usage().requests == 0
    assert rest.get("/rest/v1/leads/describe.json").json()["errors"][0]["code"] == "601"


def test_reset_can_keep_tokens(mkto: RunningMarketo, rest: httpx.Client) -> None:
    mkto.control.reset(keep_tokens=True)
    ok(rest.get("/rest/v1/leads/describe.json"))


def test_clock_moves_forward_only(mkto: RunningMarketo) -> None:
    mkto.control.freeze_clock()
    before = mkto.control.now()
    after = mkto.control.advance_clock(90)
    assert (after - before).total_seconds() == 90
    response = httpx.post(f"{mkto.base_url}/_emulator/clock", json={"set": "2001-01-01T00:00:00Z"})
    assert response.status_code == 400
    mkto.control.unfreeze_clock()


def test_config_leaves_secrets_out(mkto: RunningMarketo) -> None:
    response = httpx.get(f"{mkto.base_url}/_emulator/config")
    assert mkto.client_secret not in response.text
    config = response.json()
    assert config["clients"] == [
        {"client_id": "dmsync-emulator", "api_user": "dmsync-api@emulator.local"}
    ]
    assert {f["name"] for f in config["lead_custom_fields"]} == {
        "dynamicsType",
        "dynamicsIsDeleted",
        "dynamicsCreatedDate",
        "dynamicsOwnerId",
        "dynamicsSyncToMkto",
    }


def test_marketo_side_changes_and_lead_creation(mkto: RunningMarketo) -> None:
    lead_id = mkto.control.create_lead_inside(
        {"email": "form@example.com"}, source="Web form fillout"
    )
    assert mkto.control.change_lead(lead_id, {"firstName": "Form"}) == ["firstName"]
    assert [a["activityTypeId"] for a in mkto.control.activities()] == [12, 13]
    assert repr(mkto).count(mkto.client_secret) == 0
