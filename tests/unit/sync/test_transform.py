"""Row transforms: filter, scope, field mapping, links (synced, pending, absent), digests."""

from __future__ import annotations

from typing import Any

import pytest

from shared.sync.config import LinkSpec, load_config
from shared.sync.transform import (
    Decision,
    LinkState,
    RowTransformer,
    payload_digest,
    sync_filter_allows,
)

CONFIG = load_config()
ACCOUNT_ID = "aaaaaaaa-0000-0000-0000-000000000001"
USER_ID = "uuuuuuuu-0000-0000-0000-000000000001"


def resolver(synced: dict[str, str], pending: set[str] | None = None):  # type: ignore[no-untyped-def]
    """A link resolver over a fixed set of synced and pending ids."""

    def resolve(link: LinkSpec, target: str) -> tuple[LinkState, str | None]:
        if target in synced:
            return LinkState.SYNCED, synced[target] if link.value == "marketo_id" else target
        if pending and target in pending:
            return LinkState.PENDING, None
        return LinkState.ABSENT, None

    return resolve


def contact(**overrides: Any) -> dict[str, Any]:
    """A contact row as Dataverse returns it."""
    row: dict[str, Any] = {
        "contactid": "cccccccc-0000-0000-0000-000000000001",
        "firstname": "Ada",
        "lastname": "Lovelace",
        "emailaddress1": "ada@example.com",
        "_ownerid_value": USER_ID,
        "_parentcustomerid_value": ACCOUNT_ID,
        "new_synctomkto": None,
    }
    row.update(overrides)
    return row


@pytest.mark.parametrize(
    ("value", "synced"),
    [(None, True), (True, True), ("", True), (False, False), (0, False), ("missing", True)],
)
def test_sync_filter_only_no_stops_a_record(value: Any, synced: bool) -> None:
    """Adobe, "Create a Custom Dynamics Sync Filter": missing, empty and Yes sync; only No does
    not."""
    row = {} if value == "missing" else {"new_synctomkto": value}
    assert sync_filter_allows(row) is synced


def test_contact_maps_fields_type_and_links() -> None:
    """A contact becomes a person with its type, owner and company."""
    transformer = RowTransformer(CONFIG, "contact")
    result = transformer.prepare(contact(), resolver({ACCOUNT_ID: "1", USER_ID: "2"}))
    assert result.decision is Decision.SYNC
    payload = result.payload
    assert payload["externalPersonId"] == "cccccccc-0000-0000-0000-000000000001"
    assert payload["email"] == "ada@example.com"
    assert payload["firstName"] == "Ada"
    assert payload["dynamicsType"] == "Contact"
    assert payload["dynamicsIsDeleted"] is False
    assert payload["externalCompanyId"] == ACCOUNT_ID
    assert payload["externalSalesPersonId"] == USER_ID
    assert result.pending_links == ()


def test_filtered_out_row_builds_nothing() -> None:
    """new_synctomkto = No: no payload."""
    result = RowTransformer(CONFIG, "contact").prepare(contact(new_synctomkto=False), resolver({}))
    assert result.decision is Decision.FILTERED_OUT
    assert result.payload == {}


def test_pending_optional_link_goes_without_it_and_says_so() -> None:
    """A company not in Marketo yet: the person goes now, the link is re-sent later."""
    result = RowTransformer(CONFIG, "contact").prepare(
        contact(), resolver({USER_ID: "2"}, pending={ACCOUNT_ID})
    )
    assert result.decision is Decision.SYNC
    assert "externalCompanyId" not in result.payload
    assert result.pending_links == ("company",)


def test_absent_link_is_cleared() -> None:
    """A parent that is not an account (a contact parent) writes no company."""
    result = RowTransformer(CONFIG, "contact").prepare(contact(), resolver({USER_ID: "2"}))
    assert result.payload["externalCompanyId"] is None
    assert result.pending_links == ()


def test_first_resolving_column_wins() -> None:
    """An opportunity's company comes from parentaccountid, else an account customer."""
    row = {
        "opportunityid": "o1",
        "name": "Deal",
        "_parentaccountid_value": None,
        "_customerid_value": ACCOUNT_ID,
        "_ownerid_value": USER_ID,
        "statecode": 1,
    }
    result = RowTransformer(CONFIG, "opportunity").prepare(
        row, resolver({ACCOUNT_ID: "9", USER_ID: "2"})
    )
    assert result.payload["externalCompanyId"] == ACCOUNT_ID
    assert result.payload["stage"] == "Won"  # option-set value translated


def test_required_link_holds_the_row() -> None:
    """A required link whose target is pending holds the record back."""
    spec = LinkSpec(columns=("_x",), to="leadId", entities=("contact",), required=True)
    transformer = RowTransformer(CONFIG, "account")
    transformer._links = (("x", spec),)
    held = transformer.prepare({"accountid": "a", "_x": "c1"}, resolver({}, pending={"c1"}))
    assert held.decision is Decision.HELD
    gone = transformer.prepare({"accountid": "a", "_x": "c1"}, resolver({}))
    assert gone.decision is Decision.OUT_OF_SCOPE


def test_digest_is_stable_and_sensitive() -> None:
    """The same row gives the same digest; any mapped change gives another."""
    transformer = RowTransformer(CONFIG, "contact")
    resolve = resolver({ACCOUNT_ID: "1", USER_ID: "2"})
    first = transformer.prepare(contact(), resolve).digest
    assert transformer.prepare(contact(), resolve).digest == first
    assert transformer.prepare(contact(firstname="Ava"), resolve).digest != first
    assert transformer.prepare(contact(versionnumber=99), resolve).digest == first
    assert payload_digest({"a": 1}) != payload_digest({"a": "1"})


def test_deleted_payload_marks_the_record() -> None:
    """A Dynamics delete becomes the "deleted in Dynamics" mark, never a delete."""
    assert RowTransformer(CONFIG, "contact").deleted_payload("c1") == {
        "externalPersonId": "c1",
        "dynamicsIsDeleted": True,
    }
    assert RowTransformer(CONFIG, "account").deleted_payload("a1") == {
        "externalCompanyId": "a1",
        "dynamicsIsDeleted": True,
    }
