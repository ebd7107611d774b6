"""Queue and table clients for ``AzureWebJobsStorage`` in either of its forms.

* Connection string: ``UseDevelopmentStorage=true`` (Azurite on its default ports) or an account
  string with ``AccountName``/``AccountKey`` and either explicit ``QueueEndpoint``/``TableEndpoint``
  or ``DefaultEndpointsProtocol``/``EndpointSuffix``.
* Identity-based: ``__accountName`` (public-cloud endpoints derived from it) or explicit
  ``__queueServiceUri``/``__tableServiceUri``; authenticated with azure-identity:
  ``ManagedIdentityCredential(client_id=__clientId)`` when ``__credential=managedidentity``,
  otherwise ``DefaultAzureCredential`` (a developer's own sign-in; the design keeps
  ``__credential`` unset locally).

Queue messages are base64 text, as the Functions queue trigger expects by default.

The clients are the synchronous azure-sdk ones (azure-core's requests transport; the async ones
would need aiohttp, which is not a dependency). Async callers use ``asyncio.to_thread``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from azure.core.credentials import AzureNamedKeyCredential, TokenCredential
from azure.data.tables import TableServiceClient
from azure.storage.queue import (
    QueueClient,
    QueueServiceClient,
    TextBase64DecodePolicy,
    TextBase64EncodePolicy,
)

from shared.errors import ConfigurationError

if TYPE_CHECKING:
    from shared.settings import StorageSettings

AZURITE_ACCOUNT = "devstoreaccount1"
# Azurite's published, well-known development key (not a secret; the same on every machine).
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


def azurite_connection_string(host: str, queue_port: int, table_port: int, blob_port: int) -> str:
    """The explicit Azurite connection string for the given ports."""
    base = f"http://{host}"
    return (
        f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
        f"BlobEndpoint={base}:{blob_port}/{AZURITE_ACCOUNT};"
        f"QueueEndpoint={base}:{queue_port}/{AZURITE_ACCOUNT};"
        f"TableEndpoint={base}:{table_port}/{AZURITE_ACCOUNT};"
    )


def _parse_connection_string(text: str) -> dict[str, str]:
    """``Key=Value;`` pairs (values may contain ``=``, as base64 keys do); keys case-insensitive."""
    pairs: dict[str, str] = {}
    for part in text.strip().split(";"):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        if not sep:
            raise ConfigurationError(
                "AzureWebJobsStorage is not a valid connection string: "
                "expected Key=Value pairs separated by ';'"
            )
        pairs[key.strip().lower()] = value.strip()
    return pairs


@dataclass(frozen=True)
class StorageConnection:
    """Where the queues and tables are and how to authenticate to them.

    Exactly one of ``account_key`` and ``token_credential`` is set. ``repr`` never shows either.
    """

    queue_url: str
    table_url: str
    account_name: str
    account_key: str | None = field(default=None, repr=False)
    token_credential: TokenCredential | None = field(default=None, repr=False)

    @classmethod
    def from_settings(cls, settings: StorageSettings) -> StorageConnection:
        """Resolve either form of ``AzureWebJobsStorage``.

        Raises:
            ConfigurationError: naming what is missing from the connection string.
        """
        if settings.connection_string is not None:
            text = settings.connection_string.get_secret_value()
            if text.strip():
                return cls.from_connection_string(text)
        return cls._from_identity(settings)

    @classmethod
    def from_connection_string(cls, text: str) -> StorageConnection:
        """Parse a storage connection string (``UseDevelopmentStorage=true`` included)."""
        pairs = _parse_connection_string(text)
        if pairs.get("usedevelopmentstorage", "").lower() == "true":
            proxy = pairs.get("developmentstorageproxyuri", "http://127.0.0.1").rstrip("/")
            return cls(
                queue_url=f"{proxy}:10001/{AZURITE_ACCOUNT}",
                table_url=f"{proxy}:10002/{AZURITE_ACCOUNT}",
                account_name=AZURITE_ACCOUNT,
                account_key=AZURITE_KEY,
            )
        name, key = pairs.get("accountname"), pairs.get("accountkey")
        if not name or not key:
            raise ConfigurationError(
                "AzureWebJobsStorage connection string needs AccountName and AccountKey "
                "(or use the identity-based AzureWebJobsStorage__accountName form)"
            )
        protocol = pairs.get("defaultendpointsprotocol", "https")
        suffix = pairs.get("endpointsuffix", "core.windows.net")
        queue_url = pairs.get("queueendpoint") or f"{protocol}://{name}.queue.{suffix}"
        table_url = pairs.get("tableendpoint") or f"{protocol}://{name}.table.{suffix}"
        return cls(
            queue_url=queue_url.rstrip("/"),
            table_url=table_url.rstrip("/"),
            account_name=name,
            account_key=key,
        )

    @classmethod
    def _from_identity(cls, settings: StorageSettings) -> StorageConnection:
        from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

        name = settings.account_name
        queue_url = settings.queue_service_uri or f"https://{name}.queue.core.windows.net"
        table_url = settings.table_service_uri or f"https://{name}.table.core.windows.net"
        credential: TokenCredential
        if (settings.credential or "").lower() == "managedidentity":
            credential = ManagedIdentityCredential(client_id=settings.client_id)
        else:
            credential = DefaultAzureCredential(managed_identity_client_id=settings.client_id)
        return cls(
            queue_url=queue_url,
            table_url=table_url,
            account_name=name or _account_from_url(queue_url),
            token_credential=credential,
        )

    @cached_property
    def _credential(self) -> AzureNamedKeyCredential | TokenCredential:
        if self.account_key is not None:
            return AzureNamedKeyCredential(self.account_name, self.account_key)
        assert self.token_credential is not None
        return self.token_credential

    def table_service(self) -> TableServiceClient:
        """A table service client (one per caller; it owns a connection pool)."""
        return TableServiceClient(endpoint=self.table_url, credential=self._credential)

    def queue_service(self) -> QueueServiceClient:
        """A queue service client; its queue clients encode messages as base64 text."""
        return QueueServiceClient(
            account_url=self.queue_url,
            credential=self._credential,
            message_encode_policy=TextBase64EncodePolicy(),
            message_decode_policy=TextBase64DecodePolicy(),
        )

    def raw_queue_client(self, queue_name: str) -> QueueClient:
        """A client for one queue that sends and returns message text unchanged (no base64).

        For the local Functions host, which decodes bodies itself: a message that is not valid
        base64 must reach the poison queue instead of failing the whole receive.
        """
        return QueueClient(
            account_url=self.queue_url, queue_name=queue_name, credential=self._credential
        )

    def queue_client(self, queue_name: str) -> QueueClient:
        """A client for one queue, sending and reading base64 text as the Functions host does."""
        return QueueClient(
            account_url=self.queue_url,
            queue_name=queue_name,
            credential=self._credential,
            message_encode_policy=TextBase64EncodePolicy(),
            message_decode_policy=TextBase64DecodePolicy(),
        )


def _account_from_url(url: str) -> str:
    """``https://acct.queue.core.windows.net`` → ``acct`` (best effort, for display)."""
    host = url.split("://", 1)[-1].split("/", 1)[0]
    return host.split(".", 1)[0]
