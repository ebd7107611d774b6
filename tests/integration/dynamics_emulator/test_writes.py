"""Writes: create, update, upsert (GUID, alternate key), conditions, delete, binds, validation."""

from __future__ import annotations

import re

import httpx

from emulators.dynamics.runner import EmulatorHandle

ENTITY_ID = re.compile(r"/api/data/v9\.2/(\w+)\(([0-9a-f-]{36})\)$")


def _created_id(response: httpx.Response) -> str:
    assert response.status_code == 204, response.text
    match = ENTITY_ID.search(response.headers["OData-EntityId"])
    assert match is not None
    return match.group(2)


def test_create_returns_204_with_entity_id_and_sets_system_columns(
    dyn: EmulatorHandle, api: httpx.Client
) -> None:
    """POST gives 204 + OData-EntityId; createdon/modifiedon/versionnumber/owner are set."""
    record_id = _created_id(api.post("contacts", json={"firstname": "Ada", "lastname": "Lovelace"}))
    row = api.get(f"contacts({record_id})").json()
    assert row["fullname"] == "Ada Lovelace"
    assert row["createdon"] == row["modifiedon"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", row["createdon"])
    assert row["@odata.etag"] == f'W/"{row["versionnumber"]}"'
    assert row["_ownerid_value"] == dyn.control.info()["user_id"]
    assert row["new_synctomkto"] is True  # the column's default
    assert row["statecode"] == 0 and row["statuscode"] == 1


def test_create_with_representation_returns_201_without_entity_id(api: httpx.Client) -> None:
    """Prefer: return=representation gives 201, the row and no OData-EntityId (Dataverse
    docs, "Create a table row using the Web API")."""
    response = api.post(
        "accounts?$select=name",
        json={"name": "Rep"},
        headers={"Prefer": "return=representation"},
    )
    assert response.status_code == 201
    assert response.headers["Preference-Applied"] == "return=representation"
    assert "OData-EntityId" not in response.headers
    body = response.json()
    assert body["@odata.context"].endswith("#accounts(name)/$entity")
    assert body["name"] == "Rep" and "accountid" in body


def test_update_bumps_version_and_modifiedon(dyn: EmulatorHandle, api: httpx.Client) -> None:
    """PATCH with If-Match: * updates; versionnumber grows; modifiedon follows the clock."""
    record_id = _created_id(api.post("leads", json={"lastname": "Old", "subject": "s"}))
    before = api.get(f"leads({record_id})").json()
    dyn.control.advance_clock(seconds=90)
    update = api.patch(f"leads({record_id})", json={"lastname": "New"}, headers={"If-Match": "*"})
    assert update.status_code == 204
    after = api.get(f"leads({record_id})").json()
    assert after["lastname"] == "New" and after["subject"] == "s"
    assert after["versionnumber"] > before["versionnumber"]
    assert after["modifiedon"] > before["modifiedon"]
    assert after["createdon"] == before["createdon"]


def test_update_with_if_match_star_on_missing_row_is_404(api: httpx.Client) -> None:
    """If-Match: * prevents the create half of an upsert."""
    response = api.patch(
        "leads(11111111-2222-3333-4444-555555555555)",
        json={"lastname": "x"},
        headers={"If-Match": "*"},
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "0x80040217"


def test_upsert_by_guid_creates_then_updates(api: httpx.Client) -> None:
    """PATCH without If-Match creates the row with that GUID, then updates it (201, then 200)."""
    record_id = "11111111-2222-3333-4444-555555555555"
    prefer = {"Prefer": "return=representation"}
    created = api.patch(f"contacts({record_id})", json={"lastname": "Up"}, headers=prefer)
    assert created.status_code == 201
    assert created.json()["contactid"] == record_id
    updated = api.patch(f"contacts({record_id})", json={"lastname": "Up2"}, headers=prefer)
    assert updated.status_code == 200
    assert updated.json()["lastname"] == "Up2"
    plain = api.patch(f"contacts({record_id})", json={"firstname": "F"})
    assert plain.status_code == 204
    assert plain.headers["OData-EntityId"].endswith(f"contacts({record_id})")


def test_if_none_match_star_refuses_update(api: httpx.Client) -> None:
    """If-None-Match: * on an existing row gives 412 DuplicateRecord."""
    record_id = _created_id(api.post("contacts", json={"lastname": "Exists"}))
    response = api.patch(
        f"contacts({record_id})", json={"lastname": "x"}, headers={"If-None-Match": "*"}
    )
    assert response.status_code == 412
    assert response.json()["error"] == {
        "code": "0x80040237",
        "message": "A record with matching key values already exists.",
    }


def test_alternate_key_upsert(api: httpx.Client) -> None:
    """contacts(emailaddress1='...'): create copies the key in, update keeps it; key-form id."""
    url = "contacts(emailaddress1='o''neil@example.com')"
    created = api.patch(url, json={"lastname": "Neil"})
    assert created.status_code == 204
    assert created.headers["OData-EntityId"].endswith(
        "contacts(emailaddress1='o''neil@example.com')"
    )
    rows = api.get("contacts", params={"$filter": "emailaddress1 eq 'o''neil@example.com'"}).json()[
        "value"
    ]
    assert len(rows) == 1 and rows[0]["lastname"] == "Neil"
    api.patch(url, json={"lastname": "O'Neil", "emailaddress1": "changed@example.com"})
    rows = api.get("contacts", params={"$select": "lastname,emailaddress1"}).json()["value"]
    assert [(r["lastname"], r["emailaddress1"]) for r in rows] == [("O'Neil", "o'neil@example.com")]


def test_alternate_key_clash_is_412(api: httpx.Client) -> None:
    """Two rows with the same alternate-key value: 412 DuplicateRecord (case-insensitive)."""
    api.post("contacts", json={"lastname": "A", "emailaddress1": "same@example.com"})
    clash = api.post("contacts", json={"lastname": "B", "emailaddress1": "SAME@example.com"})
    assert clash.status_code == 412
    assert clash.json()["error"]["code"] == "0x80040237"


def test_stale_etag_gives_412_on_patch_and_delete(api: httpx.Client) -> None:
    """If-Match with an old ETag: 412 on PATCH and DELETE; the current ETag works."""
    record_id = _created_id(api.post("accounts", json={"name": "v1"}))
    old = api.get(f"accounts({record_id})").json()["@odata.etag"]
    assert (
        api.patch(
            f"accounts({record_id})", json={"name": "v2"}, headers={"If-Match": old}
        ).status_code
        == 204
    )
    stale = api.patch(f"accounts({record_id})", json={"name": "v3"}, headers={"If-Match": old})
    assert stale.status_code == 412
    assert "RowVersion" in stale.json()["error"]["message"]
    assert api.delete(f"accounts({record_id})", headers={"If-Match": old}).status_code == 412
    current = api.get(f"accounts({record_id})").json()["@odata.etag"]
    assert api.delete(f"accounts({record_id})", headers={"If-Match": current}).status_code == 204


def test_delete_then_delete_again(api: httpx.Client) -> None:
    """DELETE gives 204, then 404."""
    record_id = _created_id(api.post("leads", json={"lastname": "Gone"}))
    assert api.delete(f"leads({record_id})").status_code == 204
    again = api.delete(f"leads({record_id})")
    assert again.status_code == 404 and again.json()["error"]["code"] == "0x80040217"


def test_max_length_validation_matches_the_documented_error(api: httpx.Client) -> None:
    """Over-long text fails with 0x80044331 and the exact documented wording."""
    response = api.post("contacts", json={"firstname": "x" * 51})
    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "0x80044331",
        "message": "A validation error occurred.  The length of the 'firstname' attribute of the "
        "'contact' entity exceeded the maximum allowed length of '50'.",
    }
    assert api.post("contacts", json={"emailaddress1": "e" * 95 + "@x.io"}).status_code == 204
    assert api.post("contacts", json={"emailaddress1": "e" * 96 + "@x.io"}).status_code == 400
    assert api.post("accounts", json={"name": "n" * 161}).status_code == 400
    assert api.post("accounts", json={"description": "d" * 2001}).status_code == 400


def test_type_range_and_option_validation(api: httpx.Client) -> None:
    """Wrong types, numbers out of range, unknown choice values and properties are 400s."""
    assert api.post("accounts", json={"numberofemployees": "many"}).status_code == 400
    assert api.post("opportunities", json={"closeprobability": 101}).status_code == 400
    assert api.post("accounts", json={"industrycode": 999}).status_code == 400
    assert api.post("accounts", json={"new_synctomkto": "yes"}).status_code == 400
    unknown = api.post("accounts", json={"nosuch": 1})
    assert unknown.status_code == 400
    assert (
        "does not exist on type 'Microsoft.Dynamics.CRM.account'"
        in unknown.json()["error"]["message"]
    )


def test_binds_owner_customer_and_custom_lookup(dyn: EmulatorHandle, api: httpx.Client) -> None:
    """@odata.bind sets lookups: owner to a team, customer to account or contact, custom lookup."""
    team_id = _created_id(api.post("teams", json={"name": "Sales", "teamtype": 0}))
    account_id = _created_id(api.post("accounts", json={"name": "Parent"}))
    contact_id = _created_id(
        api.post(
            "contacts",
            json={
                "lastname": "Child",
                "parentcustomerid_account@odata.bind": f"/accounts({account_id})",
                "ownerid@odata.bind": f"/teams({team_id})",
            },
        )
    )
    prefer = {"Prefer": 'odata.include-annotations="Microsoft.Dynamics.CRM.lookuplogicalname"'}
    row = api.get(f"contacts({contact_id})", headers=prefer).json()
    assert row["_parentcustomerid_value"] == account_id
    assert row["_parentcustomerid_value@Microsoft.Dynamics.CRM.lookuplogicalname"] == "account"
    assert row["_ownerid_value"] == team_id
    assert row["_ownerid_value@Microsoft.Dynamics.CRM.lookuplogicalname"] == "team"
    opportunity = _created_id(
        api.post(
            "opportunities",
            json={"name": "Deal", "customerid_contact@odata.bind": f"contacts({contact_id})"},
        )
    )
    opp = api.get(f"opportunities({opportunity})", headers=prefer).json()
    assert opp["_customerid_value@Microsoft.Dynamics.CRM.lookuplogicalname"] == "contact"
    project = _created_id(
        api.post(
            "new_projects",
            json={"new_name": "P", "new_AccountId@odata.bind": f"/accounts({account_id})"},
        )
    )
    assert api.get(f"new_projects({project})").json()["_new_accountid_value"] == account_id
    wrong = api.post(
        "contacts", json={"parentcustomerid_account@odata.bind": f"/contacts({contact_id})"}
    )
    assert wrong.status_code == 400
    missing = api.post(
        "contacts",
        json={
            "parentcustomerid_account@odata.bind": "/accounts(00000000-0000-0000-0000-000000000009)"
        },
    )
    assert missing.status_code == 404
    undeclared = api.post(
        "new_projects", json={"new_accountid@odata.bind": f"/accounts({account_id})"}
    )
    assert undeclared.status_code == 400


def test_deleting_an_account_cascades_to_contacts_and_clears_lead_links(api: httpx.Client) -> None:
    """Parental relationships delete children; referential ones clear the lookup."""
    account_id = _created_id(api.post("accounts", json={"name": "Parent"}))
    bind = {"parentcustomerid_account@odata.bind": f"/accounts({account_id})"}
    contact_id = _created_id(api.post("contacts", json={"lastname": "Child", **bind}))
    lead_id = _created_id(
        api.post(
            "leads",
            json={"lastname": "L", "parentaccountid@odata.bind": f"/accounts({account_id})"},
        )
    )
    assert api.delete(f"accounts({account_id})").status_code == 204
    assert api.get(f"contacts({contact_id})").status_code == 404
    assert api.get(f"leads({lead_id})").json()["_parentaccountid_value"] is None


def test_connections_get_a_reciprocal_row(api: httpx.Client) -> None:
    """A stakeholder connection (opportunity → contact) comes with its reciprocal."""
    contact_id = _created_id(api.post("contacts", json={"firstname": "Sam", "lastname": "Stake"}))
    opportunity_id = _created_id(api.post("opportunities", json={"name": "Deal"}))
    role_id = _created_id(
        api.post("connectionroles", json={"name": "Stakeholder", "category": 1000})
    )
    connection_id = _created_id(
        api.post(
            "connections",
            json={
                "record1id_opportunity@odata.bind": f"/opportunities({opportunity_id})",
                "record2id_contact@odata.bind": f"/contacts({contact_id})",
                "record2roleid@odata.bind": f"/connectionroles({role_id})",
            },
        )
    )
    rows = api.get(
        "connections", params={"$filter": f"_record1id_value eq {opportunity_id}"}
    ).json()["value"]
    assert [r["connectionid"] for r in rows] == [connection_id]
    master = rows[0]
    assert master["ismaster"] is True and master["name"] == "Sam Stake"
    assert master["_record2roleid_value"] == role_id
    reciprocal = api.get(f"connections({master['_relatedconnectionid_value']})").json()
    assert reciprocal["_record1id_value"] == contact_id
    assert reciprocal["_record2id_value"] == opportunity_id
    assert reciprocal["_record1roleid_value"] == role_id
    assert api.delete(f"connections({connection_id})").status_code == 204
    assert api.get("connections").json()["value"] == []


def test_users_cannot_be_deleted_and_organization_cannot_be_created(
    dyn: EmulatorHandle, api: httpx.Client
) -> None:
    """systemusers are disabled, never deleted; the organization row is single."""
    user_id = dyn.control.info()["user_id"]
    assert api.delete(f"systemusers({user_id})").status_code == 405
    assert api.post("organizations", json={"name": "x"}).status_code == 405
