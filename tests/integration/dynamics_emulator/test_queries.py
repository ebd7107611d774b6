"""Reads: $select, $filter, $orderby, $top, $count, keys, paging, annotations, ETags."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

import httpx
import pytest

from emulators.dynamics.runner import EmulatorHandle

GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def _accounts(dyn: EmulatorHandle) -> list[dict[str, Any]]:
    owner = dyn.control.info()["user_id"]
    rows = [
        {"name": "Alpha O'Brien", "accountnumber": "A-1", "revenue": 1000.0, "numberofemployees": 5,
         "industrycode": 7, "createdon": "2024-01-05T10:00:00Z"},
        {"name": "beta labs", "accountnumber": "A-2", "revenue": 50000.0, "numberofemployees": 50,
         "industrycode": 16, "createdon": "2024-03-01T00:00:00Z"},
        {"name": "Gamma", "accountnumber": "A-3", "revenue": None, "numberofemployees": 500,
         "industrycode": None, "createdon": "2025-06-30T23:59:59Z", "new_synctomkto": False},
        {"name": "Delta", "accountnumber": None, "revenue": 7.5, "numberofemployees": None,
         "createdon": "2023-12-31T00:00:00Z", "new_synctomkto": True},
    ]  # fmt: skip
    for row in rows:
        row["_ownerid_value"] = owner
    ids = dyn.control.put_records("account", rows)
    return [{**row, "accountid": record_id} for row, record_id in zip(rows, ids, strict=True)]


def _names(response: httpx.Response) -> set[str]:
    assert response.status_code == 200, response.text
    return {row["name"] for row in response.json()["value"]}


def test_select_returns_chosen_columns_plus_primary_key_and_etag(
    dyn: EmulatorHandle, api: httpx.Client
) -> None:
    """$select limits columns; the PK and @odata.etag are always there (Dataverse docs,
    "Select columns using OData")."""
    _accounts(dyn)
    body = api.get("accounts", params={"$select": "name,accountnumber"}).json()
    assert body["@odata.context"].endswith("/$metadata#accounts(name,accountnumber)")
    row = body["value"][0]
    assert set(row) == {"@odata.etag", "name", "accountnumber", "accountid"}
    assert re.fullmatch(r'W/"\d+"', row["@odata.etag"])


def test_money_column_brings_the_currency_lookup(dyn: EmulatorHandle, api: httpx.Client) -> None:
    """Selecting a currency column adds _transactioncurrencyid_value (Dataverse docs,
    "Select columns using OData")."""
    api.post("accounts", json={"name": "Money", "revenue": 12.5})
    row = api.get("accounts", params={"$select": "revenue"}).json()["value"][0]
    assert row["revenue"] == 12.5
    assert "_transactioncurrencyid_value" in row


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("name eq 'Alpha O''Brien'", {"Alpha O'Brien"}),
        ("name eq 'BETA LABS'", {"beta labs"}),
        ("name ne 'Gamma'", {"Alpha O'Brien", "beta labs", "Delta"}),
        ("revenue gt 1000", {"beta labs"}),
        ("revenue ge 1000 and revenue lt 60000", {"Alpha O'Brien", "beta labs"}),
        ("numberofemployees le 50", {"Alpha O'Brien", "beta labs"}),
        ("revenue eq null", {"Gamma"}),
        ("accountnumber ne null", {"Alpha O'Brien", "beta labs", "Gamma"}),
        ("new_synctomkto eq false", {"Gamma"}),
        ("not (new_synctomkto eq false)", {"Alpha O'Brien", "beta labs", "Delta"}),
        (
            "createdon ge 2024-01-01 and createdon lt 2025-01-01T00:00:00Z",
            {"Alpha O'Brien", "beta labs"},
        ),
        ("(industrycode eq 7 or industrycode eq 16) and numberofemployees gt 10", {"beta labs"}),
        ("contains(name,'ta')", {"beta labs", "Delta"}),
        ("startswith(name,'g') or endswith(name,'labs')", {"Gamma", "beta labs"}),
    ],
)
def test_filter_expressions(
    dyn: EmulatorHandle, api: httpx.Client, expression: str, expected: set[str]
) -> None:
    """$filter: comparison, logic, parentheses, null, booleans, dates, strings, functions."""
    _accounts(dyn)
    assert _names(api.get("accounts", params={"$filter": expression})) == expected


def test_filter_on_guid_and_lookup_value(dyn: EmulatorHandle, api: httpx.Client) -> None:
    """Lookups filter as _<name>_value with an unquoted GUID."""
    accounts = _accounts(dyn)
    target = accounts[1]["accountid"]
    api.post(
        "contacts",
        json={"lastname": "Linked", "parentcustomerid_account@odata.bind": f"/accounts({target})"},
    )
    api.post("contacts", json={"lastname": "Alone"})
    rows = api.get("contacts", params={"$filter": f"_parentcustomerid_value eq {target}"}).json()
    assert [r["lastname"] for r in rows["value"]] == ["Linked"]
    by_pk = api.get("accounts", params={"$filter": f"accountid eq {target}"})
    assert _names(by_pk) == {"beta labs"}


@pytest.mark.parametrize(
    ("expression", "fragment"),
    [
        ("nosuchcolumn eq 1", "Could not find a property named 'nosuchcolumn'"),
        ("name eq 5", "incompatible types"),
        ("name eq 'x' and", "unexpected end"),
        ("name eq 'unterminated", "Syntax error"),
        ("(name eq 'x'", "unexpected end"),
        ("name eq 'x')", "is not valid"),
    ],
)
def test_bad_filters_are_400(api: httpx.Client, expression: str, fragment: str) -> None:
    """Malformed or mistyped filters get a 400 with an OData error body."""
    response = api.get("accounts", params={"$filter": expression})
    assert response.status_code == 400
    assert fragment in response.json()["error"]["message"]


def test_orderby_top_and_count(dyn: EmulatorHandle, api: httpx.Client) -> None:
    """$orderby (nulls first ascending), $top and $count=true."""
    _accounts(dyn)
    ordered = api.get(
        "accounts", params={"$orderby": "revenue desc,name", "$select": "name"}
    ).json()
    assert [r["name"] for r in ordered["value"]] == ["beta labs", "Alpha O'Brien", "Delta", "Gamma"]
    top = api.get("accounts", params={"$orderby": "name asc", "$top": "2", "$count": "true"}).json()
    assert [r["name"] for r in top["value"]] == ["Alpha O'Brien", "beta labs"]
    assert top["@odata.count"] == 4
    assert "@odata.nextLink" not in top
    count = api.get("accounts/$count")
    assert count.status_code == 200 and count.text == "4"


@pytest.mark.parametrize("option", ["$skip", "$search", "$format"])
def test_unsupported_query_options_are_rejected(api: httpx.Client, option: str) -> None:
    """$skip, $search and $format are not supported (Dataverse docs, "Query data using the
    Web API")."""
    response = api.get("accounts", params={option: "1"})
    assert response.status_code == 400
    assert option in response.json()["error"]["message"]


def test_paging_with_maxpagesize_and_skiptoken_cookies(
    dyn: EmulatorHandle, api: httpx.Client
) -> None:
    """Pages of odata.maxpagesize rows; nextLink after value; every row exactly once."""
    dyn.control.seed(counts={"account": 23})
    seen: list[str] = []
    url: str | None = "accounts?$select=name"
    pages = 0
    while url:
        response = api.get(url, headers={"Prefer": "odata.maxpagesize=5"})
        assert response.headers["Preference-Applied"] == "odata.maxpagesize=5"
        body = response.json()
        assert list(body)[-1] == "@odata.nextLink" or "@odata.nextLink" not in body
        assert len(body["value"]) <= 5
        seen.extend(r["accountid"] for r in body["value"])
        url = body.get("@odata.nextLink")
        if url:
            token = unquote(url.split("$skiptoken=")[1])
            assert re.match(
                r'<cookie pagenumber="\d+" pagingcookie="[^"]+" istracking="False" />', token
            )
        pages += 1
    assert pages == 5
    assert len(seen) == len(set(seen)) == 23
    assert seen == sorted(seen)  # default order: primary key


def test_paging_with_orderby_and_filter(dyn: EmulatorHandle, api: httpx.Client) -> None:
    """Paging keeps $orderby and $filter across pages and loses no row."""
    dyn.control.seed(counts={"account": 30})
    expected = api.get(
        "accounts", params={"$filter": "numberofemployees gt 100", "$orderby": "name desc"}
    ).json()["value"]
    seen: list[str] = []
    url: str | None = "accounts?$filter=numberofemployees gt 100&$orderby=name desc"
    while url:
        body = api.get(url, headers={"Prefer": "odata.maxpagesize=4"}).json()
        seen.extend(r["name"] for r in body["value"])
        url = body.get("@odata.nextLink")
    assert seen == [r["name"] for r in expected]


def test_maxpagesize_is_capped_at_5000(api: httpx.Client) -> None:
    """You can't ask for more than 5,000 rows a page (Dataverse docs, "Page results using
    OData")."""
    response = api.get("accounts", headers={"Prefer": "odata.maxpagesize=9000"})
    assert response.headers["Preference-Applied"] == "odata.maxpagesize=5000"


def test_single_row_by_id_and_alternate_key_with_annotations(
    dyn: EmulatorHandle, api: httpx.Client
) -> None:
    """GET by GUID and by alternate key; formatted values and lookup annotations on request."""
    accounts = _accounts(dyn)
    record_id = accounts[0]["accountid"]
    prefer = {"Prefer": 'odata.include-annotations="*"'}
    row = api.get(
        f"accounts({record_id})",
        params={"$select": "name,industrycode,revenue,_ownerid_value"},
        headers=prefer,
    )
    assert row.status_code == 200
    body = row.json()
    assert body["@odata.context"].endswith(
        "#accounts(name,industrycode,revenue,_ownerid_value)/$entity"
    )
    assert body["industrycode@OData.Community.Display.V1.FormattedValue"] == "Consulting"
    assert body["revenue@OData.Community.Display.V1.FormattedValue"] == "$1,000.00"
    assert body["_ownerid_value@Microsoft.Dynamics.CRM.lookuplogicalname"] == "systemuser"
    assert body["_ownerid_value@Microsoft.Dynamics.CRM.associatednavigationproperty"] == "ownerid"
    keys = list(body)
    assert keys.index("industrycode@OData.Community.Display.V1.FormattedValue") < keys.index(
        "industrycode"
    )
    by_key = api.get("accounts(accountnumber='A-1')", params={"$select": "name"})
    assert by_key.json()["name"] == "Alpha O'Brien"
    assert row.headers["ETag"] == body["@odata.etag"]


def test_not_modified_when_etag_matches(dyn: EmulatorHandle, api: httpx.Client) -> None:
    """If-None-Match with the current ETag gives 304."""
    record_id = _accounts(dyn)[0]["accountid"]
    etag = api.get(f"accounts({record_id})").json()["@odata.etag"]
    assert api.get(f"accounts({record_id})", headers={"If-None-Match": etag}).status_code == 304


def test_missing_row_and_unknown_set(api: httpx.Client) -> None:
    """404 with ObjectDoesNotExist for a row; 404 for an unknown entity set."""
    missing = api.get("accounts(00000000-0000-0000-0000-000000000001)")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "0x80040217"
    assert "Does Not Exist" in missing.json()["error"]["message"]
    assert missing.headers["REQ_ID"]
    assert api.get("widgets").status_code == 404


def test_invalid_alternate_key_names_are_rejected(api: httpx.Client) -> None:
    """A key that is not a declared alternate key gives the documented message."""
    response = api.get("accounts(name='x')")
    assert response.status_code == 400
    assert "The key in the request URI is not valid" in response.json()["error"]["message"]


def test_who_am_i_organization_and_metadata(dyn: EmulatorHandle, api: httpx.Client) -> None:
    """WhoAmI, RetrieveCurrentOrganization, organizations and EntityDefinitions."""
    info = dyn.control.info()
    for path in ("WhoAmI", "WhoAmI()"):
        who = api.get(path).json()
        assert who["OrganizationId"] == info["organization_id"]
        assert who["UserId"] == info["user_id"]
        assert GUID.match(who["BusinessUnitId"])
    detail = api.get(
        "RetrieveCurrentOrganization(AccessType=Microsoft.Dynamics.CRM.EndpointAccessType'Default')"
    ).json()["Detail"]
    assert detail["OrganizationId"] == info["organization_id"]
    assert detail["TenantId"] == dyn.tenant_id
    org = api.get(
        "organizations", params={"$select": "expirechangetrackingindays,name,createdon"}
    ).json()
    assert org["value"][0]["expirechangetrackingindays"] == 7
    assert org["value"][0]["organizationid"] == info["organization_id"]
    entity = api.get(
        "EntityDefinitions(LogicalName='new_project')",
        params={"$select": "LogicalName,EntitySetName,PrimaryIdAttribute,ChangeTrackingEnabled"},
    ).json()
    assert entity["EntitySetName"] == "new_projects"
    assert entity["PrimaryIdAttribute"] == "new_projectid"
    assert entity["ChangeTrackingEnabled"] is True
    tracked = api.get(
        "EntityDefinitions",
        params={"$select": "LogicalName", "$filter": "ChangeTrackingEnabled eq true"},
    ).json()
    assert {"lead", "contact", "account", "opportunity", "new_project"} <= {
        e["LogicalName"] for e in tracked["value"]
    }
    attributes = api.get(
        "EntityDefinitions(LogicalName='contact')/Attributes",
        params={"$select": "LogicalName,AttributeType"},
    ).json()["value"]
    by_name = {a["LogicalName"]: a for a in attributes}
    assert by_name["parentcustomerid"]["AttributeType"] == "Customer"
    assert by_name["new_synctomkto"]["AttributeType"] == "Boolean"
