"""The app settings that point the sync at Azurite and the two emulators.

The tests, the demo and the benchmark run the same app against the same local services; they
add their own settings (schedule, mapping file, limits) to these.
"""

from __future__ import annotations

from emulators.azurite import AzuriteInstance
from emulators.dynamics.runner import EmulatorHandle
from emulators.marketo.runner import RunningMarketo


def emulator_app_settings(
    azurite: AzuriteInstance, dynamics: EmulatorHandle, marketo: RunningMarketo
) -> dict[str, str]:
    """Storage, Dataverse and Marketo settings for the running local services.

    ``ClientSecretCredential`` gets its token from the Dataverse emulator's Entra-style endpoint
    (``AZURE_AUTHORITY_HOST``) and trusts its CA (``REQUESTS_CA_BUNDLE``). Marketo's budget is
    its real one: 100 calls in 20 s.
    """
    return {
        "AzureWebJobsStorage": azurite.connection_string,
        "DYNAMICS_URL": dynamics.base_url,
        "DYNAMICS_TENANT_ID": dynamics.tenant_id,
        "DYNAMICS_CLIENT_ID": dynamics.client_id,
        "DYNAMICS_CLIENT_SECRET": dynamics.client_secret,
        "AZURE_AUTHORITY_HOST": dynamics.base_url,
        "REQUESTS_CA_BUNDLE": dynamics.ca_path,
        "MARKETO_BASE_URL": marketo.base_url,
        "MARKETO_CLIENT_ID": marketo.client_id,
        "MARKETO_CLIENT_SECRET": marketo.client_secret,
        "MARKETO_CALLS_PER_20S": "100",
    }
