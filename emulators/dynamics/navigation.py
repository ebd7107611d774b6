"""Relationships and navigation properties of the served tables, derived from their lookups.

Every lookup column makes one-to-many relationships, one per target table (a customer lookup
two, reference §3). Each relationship gives the referencing table a single-valued navigation
property (the lookup's ``@odata.bind`` name: ``primarycontactid``, ``parentcustomerid_account``,
``ownerid``) and the referenced table a collection-valued one named like the relationship.
The same list answers ``RelationshipDefinitions``, ``.../ManyToOneRelationships`` and
``.../OneToManyRelationships`` and drives ``$expand``, so they cannot disagree.

Relationship names come from the docs and the table reference where they give them
(``contact_customer_accounts`` is the docs' own example); the others are made as
``<referenced>_<referencing>_<column>`` (**UNVERIFIED**: Dataverse names system relationships
``lk_...``, ``owner_...`` and so on). An owner lookup relates to the ``owner`` table, as in
Dataverse; the emulator does not serve that table, so it has no collection side.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from emulators.dynamics.schema import AttrType, Column, OnDelete, Table

PRINCIPALS = ("systemuser", "team")

# (referencing table, lookup column, referenced table) → the relationship's schema name
KNOWN_NAMES = {
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
class Relationship:
    """One one-to-many relationship: a lookup on ``referencing`` pointing at ``referenced``."""

    schema_name: str
    referenced: str
    referencing: str
    column: Column
    referencing_navigation: str
    """The single-valued navigation property on the referencing table."""

    @property
    def referenced_navigation(self) -> str:
        """The collection-valued navigation property on the referenced table."""
        return self.schema_name


def relationships(tables: Iterable[Table]) -> list[Relationship]:
    """Every one-to-many relationship of the served tables, in table and column order."""
    found: list[Relationship] = []
    for table in tables:
        for column in table.columns.values():
            if not column.is_lookup:
                continue
            if column.type is AttrType.OWNER:
                name = f"owner_{table.entity_set}"
                nav = column.nav or column.name
                found.append(Relationship(name, "owner", table.logical_name, column, nav))
                continue
            for nav, target in column.bind_names().items():
                key = (table.logical_name, column.name, target)
                name = KNOWN_NAMES.get(key) or f"{target}_{table.logical_name}_{column.name}"
                found.append(Relationship(name, target, table.logical_name, column, nav))
    return found


def cascades_delete(relationship: Relationship) -> bool:
    """Whether deleting the referenced row deletes the referencing rows (parental)."""
    return relationship.column.on_delete is OnDelete.CASCADE


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
    for relationship in relationships(tables.values()):
        if relationship.referenced == table.logical_name:
            name = relationship.referenced_navigation
            found[name] = Navigation(name, True, relationship.column, (relationship.referencing,))
    return found
