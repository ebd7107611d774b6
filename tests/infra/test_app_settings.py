"""The app settings main.bicep provides equal the settings the code's models read.

The set comes from ``shared.settings.setting_names()`` at test time, so adding a field to a
settings model without adding it to ``appSettings`` in main.bicep fails here.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic.fields import FieldInfo

from shared.settings import ALL_SETTING_MODELS, setting_names
from tests.infra.bicep_tree import decorators, object_entries, object_literals, referenced_name

# Read by the Functions host and Python worker, not by shared.settings (Functions docs:
# identity-based connections; "Use OpenTelemetry with Azure Functions").
PLATFORM_SETTINGS = {
    "APPLICATIONINSIGHTS_CONNECTION_STRING",  # where the worker's OpenTelemetry exporter sends
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",  # Entra auth for it (local auth is off)
    "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY",  # the worker exports OTel itself
}

# Read by the code but deliberately not set in Azure, each with the reason.
NOT_SET_IN_AZURE = {
    # The connection-string form needs an account key; shared keys are off in Azure.
    "AzureWebJobsStorage": "connection string (local/Azurite only)",
    # The explicit __blobServiceUri/__queueServiceUri/__tableServiceUri are set instead: they
    # come from the account's own endpoints, so they are right in every cloud.
    "AzureWebJobsStorage__accountName": "service URIs are set instead",
    # A file on the machine: local runs and self-hosted hosts; in Azure the certificate comes
    # from Key Vault (DYNAMICS_CLIENT_CERTIFICATE), whose secret form has no password.
    "DYNAMICS_CLIENT_CERTIFICATE_PATH": "certificate file (local/self-hosted only)",
    "DYNAMICS_CLIENT_CERTIFICATE_PASSWORD": "a Key Vault certificate's secret has none",
}

# Set only when the deployment supplies a value (optional features), by the parameter deciding.
CONDITIONAL_SETTINGS = {
    "DYNAMICS_CLIENT_SECRET": "dynamicsClientSecret",  # absent: the managed identity signs in
    "DYNAMICS_CLIENT_CERTIFICATE": "dynamicsCertificateSecretUri",  # a Key Vault reference
    "SYNC_MAPPING_FILE": "syncMappingFile",  # absent: the shipped default mapping
}


def app_settings(main_tree: dict[str, Any]) -> dict[str, Any]:
    return object_entries(main_tree["variables"]["appSettings"]["value"])


def model_fields() -> dict[str, FieldInfo]:
    """App-setting name -> the pydantic field that reads it."""
    return {
        field.alias: field
        for model in ALL_SETTING_MODELS
        for field in model.model_fields.values()
        if field.alias
    }


def test_bicep_sets_exactly_what_the_code_and_platform_read(main_tree: dict[str, Any]) -> None:
    """Code settings (minus the documented exceptions) + platform settings == Bicep settings."""
    provided = set(app_settings(main_tree))
    code = setting_names()
    assert provided - PLATFORM_SETTINGS == code - set(NOT_SET_IN_AZURE), (
        f"missing in main.bicep appSettings: {sorted(code - set(NOT_SET_IN_AZURE) - provided)}; "
        f"set but read by nothing: {sorted(provided - PLATFORM_SETTINGS - code)}"
    )
    # The allow-lists stay honest: each entry still means what its comment says.
    assert set(NOT_SET_IN_AZURE) <= code
    assert not set(NOT_SET_IN_AZURE) & provided
    assert provided >= PLATFORM_SETTINGS
    assert not PLATFORM_SETTINGS & code


def test_optional_settings_are_the_only_conditional_ones(main_tree: dict[str, Any]) -> None:
    """The unconditional block holds everything but the optional settings, which depend on the
    parameter that supplies them."""
    value = main_tree["variables"]["appSettings"]["value"]
    always = next(iter(object_literals(value["function"]["parameters"]["arg_1"])))
    conditional = set(app_settings(main_tree)) - {k.strip("'") for k in always}
    assert conditional == set(CONDITIONAL_SETTINGS)
    arguments = list(value["function"]["parameters"].values())[1:]
    for argument in arguments:
        condition = argument["operator"]["operands"]["condition"]
        (setting,) = object_entries(argument)
        tested = condition["function"]["parameters"]["item_to_test"]
        assert tested == CONDITIONAL_SETTINGS[setting]


def test_secrets_never_appear_as_literals(main_tree: dict[str, Any]) -> None:
    """Client secrets come from a Key Vault reference or a @secure() parameter."""
    settings = app_settings(main_tree)
    variables = main_tree["variables"]
    params = main_tree["parameters"]
    for name in ("MARKETO_CLIENT_SECRET", "DYNAMICS_CLIENT_SECRET"):
        chooser = variables[settings[name]]["value"]["operator"]["operands"]
        assert chooser["condition"] == "keyVaultEnabled"
        reference = chooser["true_value"]["operator"]["operands"]
        assert reference["operand_1"] == "keyVault"
        secret_param = chooser["false_value"]
        assert "secure" in decorators(params[secret_param]), secret_param


def test_tuning_defaults_and_bounds_match_the_settings_models(main_tree: dict[str, Any]) -> None:
    """A setting fed from a Bicep parameter has the model's default and the same bounds."""
    params = main_tree["parameters"]
    fields = model_fields()
    compared = 0
    for setting, value in app_settings(main_tree).items():
        param_name = referenced_name(value)
        if setting not in fields or param_name not in params:
            continue
        field, param = fields[setting], params[param_name]
        marks = decorators(param)
        if field.default is not None and not field.is_required():
            assert param["default"] == field.default, f"{param_name} default != {setting} default"
            compared += 1
        bounds = {type(m).__name__: m for m in field.metadata}
        if "Ge" in bounds:
            assert marks.get("min_value") == bounds["Ge"].ge, f"{param_name} @minValue"
        if "Le" in bounds:
            assert marks.get("max_value") == bounds["Le"].le, f"{param_name} @maxValue"
    assert compared >= 6  # the concurrency, rate, budget, schedule and retention settings


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ("AzureWebJobsStorage__credential", "managedidentity"),
        ("PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY", "true"),
        ("DYNAMICS_URL", "dynamicsUrl"),
        ("MARKETO_BASE_URL", "marketoBaseUrl"),
        ("DYNAMICS_CLIENT_ID", "dynamicsAuthClientId"),
    ],
)
def test_fixed_values(main_tree: dict[str, Any], setting: str, expected: str) -> None:
    """Identity-based storage, worker telemetry on, and the connection settings wired."""
    assert app_settings(main_tree)[setting] == expected


def test_dynamics_defaults_to_the_managed_identity(main_tree: dict[str, Any]) -> None:
    """An empty dynamicsClientId means the app's own identity's client id."""
    chooser = main_tree["variables"]["dynamicsAuthClientId"]["value"]["operator"]["operands"]
    assert chooser["condition"]["function"]["parameters"]["item_to_test"] == "dynamicsClientId"
    assert chooser["true_value"]["operator"]["operands"]["operand_1"] == "identity"
    assert main_tree["parameters"]["dynamicsClientSecret"]["default"] == ""
