"""local.settings.json loading (environment wins), %Setting% resolution, host id."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dmsync.host.app_settings import (
    apply_local_settings,
    default_host_id,
    read_local_settings,
    resolve_setting_references,
)
from shared.errors import ConfigurationError


def test_values_are_read_and_existing_variables_win(tmp_path: Path) -> None:
    """As `func start`: Values go into the environment unless the variable is already set."""
    path = tmp_path / "local.settings.json"
    path.write_text(
        json.dumps(
            {
                "IsEncrypted": False,
                "Values": {"A": "from-file", "B": "from-file", "N": 5, "T": True},
            }
        )
    )
    values = read_local_settings(path)
    assert values == {"A": "from-file", "B": "from-file", "N": "5", "T": "true"}
    environ = {"A": "from-env"}
    applied = apply_local_settings(values, environ)
    assert environ == {"A": "from-env", "B": "from-file", "N": "5", "T": "true"}
    assert sorted(applied) == ["B", "N", "T"]


def test_missing_file_means_no_values(tmp_path: Path) -> None:
    assert read_local_settings(tmp_path / "absent.json") == {}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not a readable JSON file"),
        ('{"IsEncrypted": true, "Values": {}}', "encrypted"),
        ('{"Values": ["a"]}', "'Values' must be a JSON object"),
        ('{"Values": {"SECRET": {"nested": 1}}}', "value of 'SECRET' must be a string"),
    ],
)
def test_malformed_files_are_named(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "local.settings.json"
    path.write_text(content)
    with pytest.raises(ConfigurationError, match=message):
        read_local_settings(path)


def test_setting_references_resolve_and_unknown_names_are_reported() -> None:
    environ = {"QUEUE": "jobs", "ENV": "dev"}
    assert resolve_setting_references("%QUEUE%-%ENV%", environ, where="x") == "jobs-dev"
    assert resolve_setting_references("0 */5 * * * *", environ, where="x") == "0 */5 * * * *"
    with pytest.raises(ConfigurationError, match=r"schedule of f refers to app setting %NOPE%"):
        resolve_setting_references("%NOPE%", environ, where="schedule of f")


def test_host_id_is_explicit_or_stable_per_folder(tmp_path: Path) -> None:
    """AzureFunctionsWebHost__hostid wins; otherwise one stable id per app folder (<= 32 chars)."""
    assert default_host_id(tmp_path, {"AzureFunctionsWebHost__hostid": "MyHost"}) == "myhost"
    first = default_host_id(tmp_path, {})
    assert first == default_host_id(tmp_path, {}) and len(first) <= 32
    (tmp_path / "other").mkdir()
    assert default_host_id(tmp_path / "other", {}) != first
