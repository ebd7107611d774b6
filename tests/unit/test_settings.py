"""Settings: every problem names the setting, never the value, and secrets stay hidden."""

from __future__ import annotations

import logging

import pytest

from shared.errors import ConfigurationError
from shared.settings import (
    DynamicsSettings,
    MarketoSettings,
    StorageSettings,
    SyncSettings,
    load,
    setting_names,
)

DYNAMICS_OK = {
    "DYNAMICS_URL": "https://contoso.crm.dynamics.com/",
    "DYNAMICS_TENANT_ID": "tenant",
    "DYNAMICS_CLIENT_ID": "client",
    "DYNAMICS_CLIENT_SECRET": "s3cr3t-value",
}


def test_dynamics_settings_load_and_normalise_url() -> None:
    """A trailing slash is dropped and the scope is derived from the URL."""
    settings = load(DynamicsSettings, DYNAMICS_OK)
    assert settings.url == "https://contoso.crm.dynamics.com"
    assert settings.scope == "https://contoso.crm.dynamics.com/.default"


def test_missing_settings_are_each_named() -> None:
    """Every missing setting appears in one error."""
    with pytest.raises(ConfigurationError) as info:
        load(DynamicsSettings, {})
    text = str(info.value)
    for name in ("DYNAMICS_URL", "DYNAMICS_TENANT_ID", "DYNAMICS_CLIENT_ID"):
        assert f"{name} is missing" in text
    assert "DYNAMICS_CLIENT_SECRET" not in text  # optional: absent means managed identity


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("ftp://contoso", "absolute URL"),
        ("http://contoso.crm.dynamics.com", "must use https"),
        ("https://contoso.crm.dynamics.com/?x=1", "query string"),
    ],
)
def test_malformed_url_is_named_with_what_is_expected(url: str, problem: str) -> None:
    """A bad URL says which setting and what it should look like."""
    with pytest.raises(ConfigurationError, match="DYNAMICS_URL is invalid") as info:
        load(DynamicsSettings, {**DYNAMICS_OK, "DYNAMICS_URL": url})
    assert problem in str(info.value)


def test_http_is_accepted_on_loopback_for_the_emulators() -> None:
    """Local emulators may serve plain http."""
    settings = load(MarketoSettings, {
        "MARKETO_BASE_URL": "http://127.0.0.1:8780",
        "MARKETO_CLIENT_ID": "id",
        "MARKETO_CLIENT_SECRET": "x",
    })  # fmt: skip
    assert settings.base_url == "http://127.0.0.1:8780"


def test_secrets_never_appear_in_errors_reprs_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    """Neither a validation error nor a repr nor a logged object shows a secret."""
    secret = "very-secret-value-123"
    settings = load(DynamicsSettings, {**DYNAMICS_OK, "DYNAMICS_CLIENT_SECRET": secret})
    with caplog.at_level(logging.INFO):
        logging.getLogger("test").info("settings: %r / %s", settings, settings)
    assert secret not in repr(settings) and secret not in str(settings)
    assert secret not in caplog.text
    with pytest.raises(ConfigurationError) as info:
        load(MarketoSettings, {"MARKETO_BASE_URL": secret, "MARKETO_CLIENT_SECRET": secret})
    assert secret not in str(info.value) and secret not in repr(info.value)
    assert info.value.__suppress_context__  # the pydantic error (which holds input) is dropped


def test_storage_needs_one_of_its_forms() -> None:
    """Neither a connection string nor an account: the error explains both forms."""
    with pytest.raises(ConfigurationError, match="AzureWebJobsStorage__accountName"):
        load(StorageSettings, {})


def test_storage_identity_form_needs_both_service_uris_without_account_name() -> None:
    """Only a queue URI is not enough; the table URI is named."""
    with pytest.raises(ConfigurationError, match="AzureWebJobsStorage__tableServiceUri"):
        load(StorageSettings, {
            "AzureWebJobsStorage__queueServiceUri": "https://acct.queue.core.windows.net",
        })  # fmt: skip


def test_storage_credential_must_be_managedidentity() -> None:
    """Any other credential kind is refused by name."""
    with pytest.raises(ConfigurationError, match="__credential must be 'managedidentity'"):
        load(StorageSettings, {
            "AzureWebJobsStorage__accountName": "acct",
            "AzureWebJobsStorage__credential": "password",
        })  # fmt: skip


def test_setting_names_are_case_insensitive() -> None:
    """App settings on Windows hosts may arrive in another case."""
    settings = load(StorageSettings, {"azurewebjobsstorage": "UseDevelopmentStorage=true"})
    assert settings.connection_string is not None


def test_schedule_default_and_validation() -> None:
    """The timer defaults to every minute; prose is refused with the expected form."""
    assert load(SyncSettings, {}).schedule == "0 */1 * * * *"
    with pytest.raises(ConfigurationError, match=r"SYNC_SCHEDULE is invalid.*six fields"):
        load(SyncSettings, {"SYNC_SCHEDULE": "every minute"})


def test_setting_names_cover_the_design() -> None:
    """The names the design fixes are all read by the models."""
    expected = {
        "AzureWebJobsStorage", "AzureWebJobsStorage__accountName",
        "AzureWebJobsStorage__queueServiceUri", "AzureWebJobsStorage__tableServiceUri",
        "AzureWebJobsStorage__credential", "AzureWebJobsStorage__clientId",
        "DYNAMICS_URL", "DYNAMICS_TENANT_ID", "DYNAMICS_CLIENT_ID", "DYNAMICS_CLIENT_SECRET",
        "AZURE_AUTHORITY_HOST", "MARKETO_BASE_URL", "MARKETO_CLIENT_ID", "MARKETO_CLIENT_SECRET",
        "SYNC_SCHEDULE",
    }  # fmt: skip
    assert expected <= setting_names()
