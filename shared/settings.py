"""App settings: one typed model per concern, read from environment variables.

The names are the app-setting names the design fixes (the same locally and in Azure). Every
problem is reported at start as a :class:`~shared.errors.ConfigurationError` that names the
setting and says what is expected; the offending value is never echoed, because it may be a
secret. Secrets are held as :class:`pydantic.SecretStr`, so reprs and logs show ``**********``.

Storage, Dynamics, Marketo and sync settings load separately so that a command needing only one
(``dmsync status`` needs storage alone) does not demand the others.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, TypeVar
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.errors import ConfigurationError

_LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1"}


def _base_url(value: str) -> str:
    """An absolute https URL (http allowed on loopback, for the local emulators), no trailing /."""
    parts = urlsplit(value.strip())
    if parts.scheme not in {"https", "http"} or not parts.hostname:
        raise ValueError("must be an absolute URL such as https://host")
    if parts.scheme == "http" and parts.hostname not in _LOOPBACK_HOSTS:
        raise ValueError("must use https (plain http is accepted only for localhost)")
    if parts.query or parts.fragment:
        raise ValueError("must not carry a query string or fragment")
    return value.strip().rstrip("/")


_NCRONTAB_FIELD = re.compile(r"^[0-9*/,\-A-Za-z]+$")


def _ncrontab(value: str) -> str:
    """A five- or six-field NCRONTAB expression (the Functions timer format)."""
    fields = value.split()
    if len(fields) not in (5, 6) or not all(_NCRONTAB_FIELD.match(f) for f in fields):
        raise ValueError(
            "must be an NCRONTAB expression of six fields "
            "'{second} {minute} {hour} {day} {month} {day-of-week}', e.g. '0 */1 * * * *'"
        )
    return value


BaseUrl = Annotated[str, AfterValidator(_base_url)]
Ncrontab = Annotated[str, AfterValidator(_ncrontab)]


class _Settings(BaseSettings):
    """Shared config: env names are the aliases; unknown variables are ignored."""

    model_config = SettingsConfigDict(
        populate_by_name=False,
        extra="ignore",
        case_sensitive=False,
        hide_input_in_errors=True,
    )


class StorageSettings(_Settings):
    """``AzureWebJobsStorage`` in either of its two forms.

    * a connection string (Azurite's ``UseDevelopmentStorage=true`` or an account string), or
    * identity-based: ``AzureWebJobsStorage__accountName`` (public cloud endpoints derived) or
      explicit ``__queueServiceUri`` / ``__tableServiceUri``, with ``__credential=managedidentity``
      and ``__clientId`` for a user-assigned identity.
    """

    connection_string: SecretStr | None = Field(
        default=None,
        alias="AzureWebJobsStorage",
        description="a storage connection string, e.g. UseDevelopmentStorage=true",
    )
    account_name: str | None = Field(
        default=None,
        alias="AzureWebJobsStorage__accountName",
        description="the storage account name (identity-based connection)",
    )
    queue_service_uri: BaseUrl | None = Field(
        default=None,
        alias="AzureWebJobsStorage__queueServiceUri",
        description="the queue endpoint, e.g. https://acct.queue.core.windows.net",
    )
    table_service_uri: BaseUrl | None = Field(
        default=None,
        alias="AzureWebJobsStorage__tableServiceUri",
        description="the table endpoint, e.g. https://acct.table.core.windows.net",
    )
    blob_service_uri: BaseUrl | None = Field(
        default=None,
        alias="AzureWebJobsStorage__blobServiceUri",
        description="the blob endpoint (used by the Functions host, not by this app's code)",
    )
    credential: str | None = Field(
        default=None,
        alias="AzureWebJobsStorage__credential",
        description="'managedidentity' for an identity-based connection",
    )
    client_id: str | None = Field(
        default=None,
        alias="AzureWebJobsStorage__clientId",
        description="the client id of the user-assigned managed identity",
    )

    @model_validator(mode="after")
    def _one_form(self) -> StorageSettings:
        has_string = self.connection_string is not None and bool(
            self.connection_string.get_secret_value().strip()
        )
        has_identity = bool(self.account_name or self.queue_service_uri or self.table_service_uri)
        if not has_string and not has_identity:
            raise ValueError(
                "AzureWebJobsStorage is not set: give a connection string "
                "(e.g. UseDevelopmentStorage=true) or AzureWebJobsStorage__accountName "
                "(or __queueServiceUri and __tableServiceUri) for an identity-based connection"
            )
        if not has_string and not self.account_name:
            missing = [
                name
                for name, value in (
                    ("AzureWebJobsStorage__queueServiceUri", self.queue_service_uri),
                    ("AzureWebJobsStorage__tableServiceUri", self.table_service_uri),
                )
                if not value
            ]
            if missing:
                raise ValueError(
                    f"{' and '.join(missing)} must be set when AzureWebJobsStorage__accountName "
                    "is not (this app uses both queues and tables)"
                )
        if self.credential is not None and self.credential.lower() != "managedidentity":
            raise ValueError("AzureWebJobsStorage__credential must be 'managedidentity' if set")
        return self


class DynamicsSettings(_Settings):
    """The Dataverse environment and how to authenticate to it."""

    url: BaseUrl = Field(
        alias="DYNAMICS_URL",
        description="the environment URL, e.g. https://contoso.crm.dynamics.com",
    )
    tenant_id: str = Field(
        alias="DYNAMICS_TENANT_ID",
        min_length=1,
        description="the Entra tenant id (GUID) or domain of the environment",
    )
    client_id: str = Field(
        alias="DYNAMICS_CLIENT_ID",
        min_length=1,
        description="the application (client) id of the Dataverse application user",
    )
    client_secret: SecretStr | None = Field(
        default=None,
        alias="DYNAMICS_CLIENT_SECRET",
        description="the app registration's client secret; leave unset to use managed identity",
    )
    client_certificate_path: str | None = Field(
        default=None,
        alias="DYNAMICS_CLIENT_CERTIFICATE_PATH",
        description="a PEM or PKCS12 file with the app registration's certificate and its "
        "private key (instead of a client secret)",
    )
    client_certificate: SecretStr | None = Field(
        default=None,
        alias="DYNAMICS_CLIENT_CERTIFICATE",
        description="the certificate with its private key, base64 PKCS12 or PEM text: what a "
        "Key Vault reference to a Key Vault certificate resolves to",
    )
    client_certificate_password: SecretStr | None = Field(
        default=None,
        alias="DYNAMICS_CLIENT_CERTIFICATE_PASSWORD",
        description="the password of a PKCS12 certificate, if it has one",
    )
    authority_host: BaseUrl | None = Field(
        default=None,
        alias="AZURE_AUTHORITY_HOST",
        description="the Entra authority host, e.g. https://login.microsoftonline.com",
    )

    max_concurrency: int = Field(
        default=8,
        ge=1,
        le=52,
        alias="DYNAMICS_MAX_CONCURRENCY",
        description="the app's share (all instances together) of the 52 concurrent requests "
        "per application user, 1-52",
    )
    requests_per_5min: int = Field(
        default=3_000,
        ge=1,
        le=6_000,
        alias="DYNAMICS_REQUESTS_PER_5MIN",
        description="the app's share (all instances together) of the 6,000 requests per "
        "5 minutes per application user, 1-6000",
    )

    @model_validator(mode="after")
    def _one_credential(self) -> DynamicsSettings:
        given = [
            name
            for name, value in (
                ("DYNAMICS_CLIENT_SECRET", self.client_secret),
                ("DYNAMICS_CLIENT_CERTIFICATE_PATH", self.client_certificate_path),
                ("DYNAMICS_CLIENT_CERTIFICATE", self.client_certificate),
            )
            if value is not None
            and (value.get_secret_value() if isinstance(value, SecretStr) else value).strip()
        ]
        if len(given) > 1:
            raise ValueError(
                f"{' and '.join(given)} are both set: give one way to sign in to Dataverse "
                "(a secret, a certificate file, or a certificate), or none for managed identity"
            )
        return self

    @property
    def uses_certificate(self) -> bool:
        """The app registration signs in with a certificate."""
        return bool(self.client_certificate_path) or bool(
            self.client_certificate and self.client_certificate.get_secret_value().strip()
        )

    @property
    def scope(self) -> str:
        """The client-credentials scope for this environment (``<url>/.default``)."""
        return f"{self.url}/.default"


class MarketoSettings(_Settings):
    """The Marketo instance (REST API user) and this integration's share of its limits."""

    base_url: BaseUrl = Field(
        alias="MARKETO_BASE_URL",
        description="the REST base without /rest, e.g. https://123-ABC-456.mktorest.com",
    )
    client_id: str = Field(
        alias="MARKETO_CLIENT_ID",
        min_length=1,
        description="the client id of the Marketo custom service (API user)",
    )
    client_secret: SecretStr = Field(
        alias="MARKETO_CLIENT_SECRET",
        description="the client secret of the Marketo custom service",
    )

    calls_per_20s: int = Field(
        default=50,
        ge=1,
        le=100,
        alias="MARKETO_CALLS_PER_20S",
        description="this integration's share (all instances together) of the 100 calls / 20 s "
        "instance limit (1-100)",
    )
    max_concurrency: int = Field(
        default=5,
        ge=1,
        le=10,
        alias="MARKETO_MAX_CONCURRENCY",
        description="this integration's share (all instances together) of the 10 concurrent "
        "calls limit (1-10)",
    )
    daily_call_budget: int = Field(
        default=25_000,
        ge=1,
        alias="MARKETO_DAILY_CALL_BUDGET",
        description="calls per day (all instances together, counted in Table Storage) this "
        "integration may use of the instance's daily quota",
    )

    @model_validator(mode="after")
    def _secret_not_empty(self) -> MarketoSettings:
        if not self.client_secret.get_secret_value():
            raise ValueError("MARKETO_CLIENT_SECRET must not be empty")
        return self


class SyncSettings(_Settings):
    """How often the sync runs, and how it is configured."""

    schedule: Ncrontab = Field(
        default="0 */1 * * * *",
        alias="SYNC_SCHEDULE",
        description="the NCRONTAB schedule of the sync timer (UTC)",
    )
    error_retention_days: int = Field(
        default=30,
        ge=1,
        le=365,
        alias="SYNC_ERROR_RETENTION_DAYS",
        description="days a resolved or abandoned sync error is kept (1-365)",
    )
    recovery_seconds: int = Field(
        default=90,
        ge=10,
        le=3600,
        alias="SYNC_RECOVERY_SECONDS",
        description="seconds an open run may show no sign of life before the timer sends it "
        "a new job (10-3600; keep it above Marketo's 90 s write timeout)",
    )
    mapping_file: str | None = Field(
        default=None,
        alias="SYNC_MAPPING_FILE",
        description="path to a field-mapping file replacing the shipped default",
    )
    instance_id: str = Field(
        default="default",
        alias="SYNC_INSTANCE_ID",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
        description="the id of this integration instance in the state store "
        "(letters, digits, '.', '_' or '-', up to 64)",
    )


S = TypeVar("S", bound=_Settings)


def _describe(model: type[_Settings], error: Mapping[str, Any]) -> str:
    """One line naming the setting at fault and what it expects (never the value)."""
    loc = error.get("loc") or ()
    field_name = str(loc[0]) if loc else ""
    field = model.model_fields.get(field_name)
    alias = field.alias if field and field.alias else field_name
    expected = field.description if field and field.description else ""
    kind = error.get("type", "")
    if not alias:  # a model-level rule: its message already names the settings
        return str(error.get("msg", "invalid")).removeprefix("Value error, ")
    if kind == "missing":
        problem = "is missing"
    else:
        problem = "is invalid: " + str(error.get("msg", "")).removeprefix("Value error, ")
    return f"{alias} {problem}" + (f" (expected {expected})" if expected else "")


def load(model: type[S], environ: Mapping[str, str] | None = None) -> S:
    """Build ``model`` from ``environ`` (default: the process environment).

    Raises:
        ConfigurationError: naming every setting that is missing or malformed.
    """
    try:
        if environ is None:
            return model()
        # Pass the mapping as init data keyed by alias; the env is then not consulted.
        known = {
            f.alias: environ[f.alias]
            for f in model.model_fields.values()
            if f.alias and f.alias in environ
        }
        lowered = {k.lower(): v for k, v in environ.items()}
        for f in model.model_fields.values():
            if f.alias and f.alias not in known and f.alias.lower() in lowered:
                known[f.alias] = lowered[f.alias.lower()]
        return model.model_validate(known)
    except ValidationError as exc:
        lines = [_describe(model, err) for err in exc.errors(include_input=False)]
        raise ConfigurationError("Invalid app settings: " + "; ".join(lines)) from None


ALL_SETTING_MODELS: tuple[type[_Settings], ...] = (
    StorageSettings,
    DynamicsSettings,
    MarketoSettings,
    SyncSettings,
)


def setting_names() -> set[str]:
    """Every app-setting name the settings models read (for the infra consistency check)."""
    return {f.alias for model in ALL_SETTING_MODELS for f in model.model_fields.values() if f.alias}
