"""The mapping file: the shipped default loads; every mistake is named."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.errors import ConfigurationError
from shared.sync.config import (
    DEFAULT_MAPPING_FILE,
    SYNC_FILTER_COLUMN,
    TargetKind,
    load_config,
    parse_config,
)
from shared.sync.order import dependency_order, dependents_of

MINIMAL = """
version = 1
[entity.account]
table = "account"
entity_set = "accounts"
primary_key = "accountid"
target = "company"
key_field = "externalCompanyId"
[entity.account.fields]
name = "company"
"""


def test_default_mapping_loads_in_adobe_order() -> None:
    """Sales persons, then companies, then persons, then opportunities (Adobe, "Marketo Sales
    Insight for Non-Native MS Dynamics Integrations")."""
    config = load_config()
    order = config.order
    assert order.index("systemuser") < order.index("account") < order.index("contact")
    assert order.index("contact") < order.index("opportunity")
    assert config.entity["contact"].target is TargetKind.LEAD
    assert config.entity["contact"].person_type == "Contact"


def test_default_mapping_carries_documented_defaults() -> None:
    """A few of the pairs Adobe documents ("Default Dynamics Field Mapping") are in the shipped
    file."""
    config = load_config(DEFAULT_MAPPING_FILE)
    contact = config.entity["contact"].field_specs()
    assert contact["emailaddress1"].to == "email"
    assert contact["firstname"].to == "firstName"
    assert config.entity["account"].field_specs()["name"].to == "company"


def test_select_list_holds_key_fields_links_and_the_filter() -> None:
    """The $select list has the primary key first, every mapped, link and filter column once."""
    spec = load_config().entity["contact"]
    columns = spec.dynamics_columns()
    assert columns[0] == "contactid"
    assert "_parentcustomerid_value" in columns
    assert SYNC_FILTER_COLUMN in columns
    assert len(columns) == len(set(columns))


def test_marketo_fields_include_key_links_and_markers() -> None:
    """Every field the entity writes is listed, for the schema check."""
    config = load_config()
    fields = config.entity["lead"].marketo_fields()
    assert {"externalPersonId", "externalSalesPersonId", "externalCompanyId", "email"} <= fields


def test_unknown_keys_are_refused_with_their_path() -> None:
    """A typo in a key is named with the entity it is in."""
    with pytest.raises(ConfigurationError, match=r"entity\.account\.feilds"):
        parse_config(MINIMAL.replace("[entity.account.fields]", "[entity.account.feilds]"), "x")


def test_bad_target_is_named() -> None:
    """An unknown target kind is refused with the allowed ones."""
    with pytest.raises(ConfigurationError, match=r"entity\.account\.target"):
        parse_config(MINIMAL.replace('"company"\nkey', '"firm"\nkey'), "x")


def test_custom_object_needs_its_name() -> None:
    """object_name goes with custom_object and nothing else."""
    text = MINIMAL.replace('target = "company"', 'target = "custom_object"')
    with pytest.raises(ConfigurationError, match="object_name is required"):
        parse_config(text, "x")


def test_unknown_dependency_and_link_target_are_named() -> None:
    """depends_on and links must name configured entities."""
    with pytest.raises(ConfigurationError, match="depends on unknown entity 'systemuser'"):
        parse_config(
            MINIMAL.replace('key_field = "externalCompanyId"',
                            'key_field = "externalCompanyId"\ndepends_on = ["systemuser"]'),
            "x",
        )  # fmt: skip
    text = MINIMAL + (
        '[entity.account.links.owner]\ncolumns = ["_ownerid_value"]\n'
        'to = "externalSalesPersonId"\nentities = ["systemuser"]\n'
    )
    with pytest.raises(ConfigurationError, match="link 'owner' names unknown entity"):
        parse_config(text, "x")


def test_invalid_toml_and_missing_file_are_named(tmp_path: Path) -> None:
    """The file's path is in the message."""
    with pytest.raises(ConfigurationError, match="not valid TOML"):
        parse_config("entity = [", "broken.toml")
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigurationError, match=r"SYNC_MAPPING_FILE .*nope\.toml cannot be read"):
        load_config(missing)


def test_user_file_replaces_the_default(tmp_path: Path) -> None:
    """A custom file with one entity is all that syncs."""
    path = tmp_path / "mapping.toml"
    path.write_text(MINIMAL)
    assert load_config(path).order == ("account",)


def test_dependency_order_and_cycles() -> None:
    """Dependencies come first, ties keep file order, and a cycle is named."""
    graph = {"c": ["a", "b"], "a": [], "b": ["a"], "d": []}
    assert dependency_order(graph) == ("a", "b", "c", "d")
    assert dependents_of("a", graph) == ("c", "b")
    with pytest.raises(ConfigurationError, match="a -> b -> a"):
        dependency_order({"a": ["b"], "b": ["a"]})


def test_extends_lays_a_file_over_the_default(tmp_path: Path) -> None:
    """Only the additions are written; everything else comes from the shipped mapping."""
    path = tmp_path / "mine.toml"
    path.write_text(
        'version = 1\nextends = "default"\n[entity.contact.fields]\ntelephone2 = "phone2"\n'
    )
    config = load_config(path)
    fields = config.entity["contact"].field_specs()
    assert fields["telephone2"].to == "phone2"
    assert fields["emailaddress1"].to == "email"  # kept from the default
    assert set(load_config().entity) == set(config.entity)


def test_extends_only_knows_the_default() -> None:
    """Another base is refused by name."""
    with pytest.raises(ConfigurationError, match='extends must be "default"'):
        parse_config('version = 1\nextends = "other"\n', "x")
