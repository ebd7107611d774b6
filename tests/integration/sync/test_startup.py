"""Start-up: the mapping is checked against both schemas; every problem is named at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from emulators.azurite import AzuriteInstance
from emulators.dynamics.runner import EmulatorHandle
from emulators.marketo.runner import RunningMarketo
from shared.errors import ConfigurationError
from shared.sync.service import build_runtime
from tests.integration.sync.harness import sync_environment

pytestmark = pytest.mark.integration


def mapping(tmp_path: Path, text: str) -> str:
    """A mapping file extending the shipped default."""
    path = tmp_path / "mapping.toml"
    path.write_text('version = 1\nextends = "default"\n' + text)
    return str(path)


async def test_unknown_columns_fields_and_tables_are_all_named(
    azurite: AzuriteInstance, dyn: EmulatorHandle, mkto: RunningMarketo, tmp_path: Path
) -> None:
    """One message lists each entity and field at fault on either side."""
    text = (
        '[entity.contact.fields]\nnickname = "firstName"\nfirstname = "givenName"\n'
        '[entity.gadget]\ntable = "new_gadget"\nentity_set = "new_gadgets"\n'
        'primary_key = "new_gadgetid"\ntarget = "company"\nkey_field = "externalCompanyId"\n'
    )
    environ = sync_environment(azurite, dyn, mkto, SYNC_MAPPING_FILE=mapping(tmp_path, text))
    with pytest.raises(ConfigurationError) as info:
        await build_runtime(environ, table_prefix="tstartup1")
    message = str(info.value)
    assert (
        "entity 'contact': Dynamics column 'nickname' does not exist on table 'contact'" in message
    )
    assert "entity 'contact': Marketo field 'givenName' does not exist on lead" in message
    assert "entity 'gadget': Dynamics table 'new_gadget' does not exist" in message


async def test_a_table_without_change_tracking_is_refused_by_name(
    azurite: AzuriteInstance, dyn: EmulatorHandle, mkto: RunningMarketo
) -> None:
    """No delta link would ever come: refuse at start rather than after a first full pass."""
    dyn.control.set_change_tracking("lead", False)
    try:
        with pytest.raises(ConfigurationError, match=r"change tracking is not enabled on .*'lead'"):
            await build_runtime(sync_environment(azurite, dyn, mkto), table_prefix="tstartup2")
    finally:
        dyn.control.set_change_tracking("lead", True)


async def test_the_default_mapping_needs_no_custom_entity_and_extends_adds_one(
    azurite: AzuriteInstance, dyn: EmulatorHandle, mkto: RunningMarketo, tmp_path: Path
) -> None:
    """The shipped mapping starts as it is; a file with `extends` only adds what it names."""
    environ = sync_environment(azurite, dyn, mkto)
    environ.pop("SYNC_MAPPING_FILE")
    runtime = await build_runtime(environ, table_prefix="tstartup3")
    try:
        assert "new_project" not in runtime.runner.config.entity
        assert runtime.runner.config.entity["contact"].sync_filter
    finally:
        await runtime.aclose()
        runtime.store.drop_tables()
