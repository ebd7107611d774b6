"""Both forms of AzureWebJobsStorage resolve to queue and table endpoints, without leaking keys."""

from __future__ import annotations

import pytest

from shared.errors import ConfigurationError
from shared.settings import StorageSettings, load
from shared.storage import AZURITE_KEY, StorageConnection


def test_use_development_storage() -> None:
    """The shorthand means Azurite on its default ports."""
    conn = StorageConnection.from_connection_string("UseDevelopmentStorage=true")
    assert conn.queue_url == "http://127.0.0.1:10001/devstoreaccount1"
    assert conn.table_url == "http://127.0.0.1:10002/devstoreaccount1"
    assert conn.account_key == AZURITE_KEY


def test_account_string_with_explicit_endpoints_and_base64_key() -> None:
    """Values may contain '=' (base64 keys); explicit endpoints win."""
    conn = StorageConnection.from_connection_string(
        "DefaultEndpointsProtocol=http;AccountName=acct;AccountKey=abc==;"
        "QueueEndpoint=http://127.0.0.1:5/acct/;TableEndpoint=http://127.0.0.1:6/acct;"
    )
    assert (conn.queue_url, conn.table_url) == (
        "http://127.0.0.1:5/acct",
        "http://127.0.0.1:6/acct",
    )
    assert conn.account_key == "abc=="
    assert "abc==" not in repr(conn)


def test_account_string_with_suffix() -> None:
    """Endpoints are derived from the protocol and suffix when not given."""
    conn = StorageConnection.from_connection_string(
        "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=k;EndpointSuffix=core.chinacloudapi.cn"
    )
    assert conn.queue_url == "https://acct.queue.core.chinacloudapi.cn"


@pytest.mark.parametrize("text", ["AccountName=acct", "garbage", "AccountKey=k"])
def test_incomplete_strings_are_refused(text: str) -> None:
    """The error names what is missing and does not echo the string."""
    with pytest.raises(ConfigurationError, match="AzureWebJobsStorage") as info:
        StorageConnection.from_connection_string(text)
    assert text not in str(info.value)


def test_identity_form_with_account_name_uses_managed_identity() -> None:
    """__accountName derives public endpoints; __credential=managedidentity takes __clientId."""
    from azure.identity import ManagedIdentityCredential

    settings = load(StorageSettings, {
        "AzureWebJobsStorage__accountName": "acct",
        "AzureWebJobsStorage__credential": "managedidentity",
        "AzureWebJobsStorage__clientId": "00000000-0000-0000-0000-00000000abcd",
    })  # fmt: skip
    conn = StorageConnection.from_settings(settings)
    assert conn.queue_url == "https://acct.queue.core.windows.net"
    assert conn.table_url == "https://acct.table.core.windows.net"
    assert isinstance(conn.token_credential, ManagedIdentityCredential)
    assert conn.account_key is None


def test_identity_form_with_explicit_uris() -> None:
    """Explicit service URIs are used as given, and the account name is read from them."""
    settings = load(StorageSettings, {
        "AzureWebJobsStorage__queueServiceUri": "https://acct2.queue.core.windows.net",
        "AzureWebJobsStorage__tableServiceUri": "https://acct2.table.core.windows.net",
        "AzureWebJobsStorage__credential": "managedidentity",
    })  # fmt: skip
    conn = StorageConnection.from_settings(settings)
    assert conn.account_name == "acct2"
    assert conn.table_url == "https://acct2.table.core.windows.net"
