"""Navigation properties of the served tables, derived from their lookup columns.

* Single-valued (many-to-one): each lookup's ``@odata.bind`` name (``primarycontactid``,
  ``parentcustomerid_account``, ``ownerid``, ``createdby``...), as in the Web API (reference §3).
* Collection-valued (one-to-many): the relationship's schema name on the referenced table,
  only for the relationships whose names the docs and the table reference give
  (``contact_customer_accounts`` is the docs' own example). Relationships of custom lookups and
  of system lookups such as ``createdby`` are not served as collections.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from emulators.dynamics.schema import AttrType, Column, Table

PRINCIPALS = ("systemuser", "team")

# (referencing table, lookup column, referenced table) → one-to-many relationship name
ONE_TO_MANY = {
    ("contact", "parentcustomerid", "account"): "contact_customer_accounts",
    ("contact", "parentcustomerid", "contact"): "contact_customer_contacts",
    ("opportunity", "customerid", "account"): "opportunity_customer_accounts",
    ("opportunity", "customerid", "contact"): "opportunity_customer_contacts",
    ("account", "primarycontactid", "contact"): "account_primary_contact",
    ("account", "parentaccountid", "account"): "account_parent_account",
    ("lead", "parentaccountid", "account"): "lead_parent_account",
    ("lead", "parentcontactid", "contact"): "lead_parent_contact",
    ("opportunity", "parentaccountid", "account"): "opportunity_parent_account",
    ("opportunity", "parentcontactid", "contact"): "opportunity_parent_contact",
}


@dataclass(frozen=True)
class Navigation:
    """One navigation property of a table."""

    name: str
    collection: bool
    column: Column
    """The lookup: on this table (single-valued) or on the related table (collection)."""
    related: tuple[str, ...]
    """Single-valued: the table(s) the lookup points at; collection: the referencing table."""


def navigation_properties(table: Table, tables: Mapping[str, Table]) -> dict[str, Navigation]:
    """Every navigation property of ``table`` by name."""
    found: dict[str, Navigation] = {}
    for name, (column, target) in table.bind_targets.items():
        related = PRINCIPALS if column.type is AttrType.OWNER else (target,)
        found[name] = Navigation(name, False, column, related)
    for (referencing, column_name, referenced), name in ONE_TO_MANY.items():
        other = tables.get(referencing)
        if referenced != table.logical_name or other is None:
            continue
        lookup = other.columns.get(column_name)
        if lookup is not None:
            found[name] = Navigation(name, True, lookup, (referencing,))
    return found
