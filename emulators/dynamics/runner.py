"""Start the Dynamics emulator for tests and benchmarks, and drive its control API.

``run_dynamics_emulator(mode="thread")`` serves from a background thread of the calling process
(fast start, for tests); ``mode="subprocess"`` runs ``dmsync emulator dynamics`` as a child
process so a benchmark can measure the client's CPU alone. Both yield an :class:`EmulatorHandle`.

Example::

    with run_dynamics_emulator(records=100) as dyn:
        with dyn.http_client() as http:
            token = dyn.fetch_token(http)
            http.get(f"{dyn.api_url}/accounts", headers={"Authorization": f"Bearer {token}"})
"""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import httpx

from emulators.dynamics.config import EmulatorConfig
from emulators.process_group import stop_group

REPO_ROOT = Path(__file__).resolve().parents[2]


class ControlClient:
    """Typed calls to ``/_emulator/`` (see the emulator README for each endpoint)."""

    def __init__(self, base_url: str, ca_path: str) -> None:
        self._http = httpx.Client(
            base_url=f"{base_url}/_emulator",
            verify=ssl.create_default_context(cafile=ca_path),
            timeout=120,
        )

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._http.close()

    def _call(
        self, method: str, path: str, body: dict[str, Any] | None = None, **params: Any
    ) -> Any:
        response = self._http.request(method, path, json=body, params=params or None)
        if response.status_code >= 400:
            raise RuntimeError(f"control {method} {path}: {response.status_code} {response.text}")
        return response.json()

    def info(self) -> dict[str, Any]:
        """Identity, clock, versions and per-table row counts."""
        result: dict[str, Any] = self._call("GET", "/info")
        return result

    def reset(self, *, clock: bool = True, fault_seed: int | None = None) -> None:
        """Empty every table and reset counters, faults, limits, token lifetime (and the clock)."""
        body: dict[str, Any] = {"clock": clock}
        if fault_seed is not None:
            body["fault_seed"] = fault_seed
        self._call("POST", "/reset", body)

    def seed(
        self,
        records_per_table: int | None = None,
        *,
        counts: dict[str, int] | None = None,
        seed: int | None = None,
        no_sync_share: float = 0.1,
        null_sync_share: float = 0.05,
        bad_data_share: float = 0.05,
    ) -> dict[str, int]:
        """Generate deterministic rows; returns the row count of every table afterwards."""
        body: dict[str, Any] = {
            "records_per_table": records_per_table,
            "counts": counts or {},
            "no_sync_share": no_sync_share,
            "null_sync_share": null_sync_share,
            "bad_data_share": bad_data_share,
        }
        if seed is not None:
            body["seed"] = seed
        rows: dict[str, int] = self._call("POST", "/seed", body)["rows"]
        return rows

    def records(self, table: str, offset: int = 0, limit: int = 100_000) -> list[dict[str, Any]]:
        """Rows of a table in primary-key order, bypassing auth and limits."""
        rows: list[dict[str, Any]] = self._call(
            "GET", f"/tables/{table}/records", offset=offset, limit=limit
        )["records"]
        return rows

    def record(self, table: str, record_id: str) -> dict[str, Any]:
        """One row."""
        row: dict[str, Any] = self._call("GET", f"/tables/{table}/records/{record_id}")
        return row

    def put_records(
        self, table: str, records: list[dict[str, Any]], *, replace: bool = False
    ) -> list[str]:
        """Insert or merge rows directly (no validation, no limits; change tracking sees them)."""
        body = {"records": records, "mode": "replace" if replace else "merge"}
        ids: list[str] = self._call("PUT", f"/tables/{table}/records", body)["ids"]
        return ids

    def delete_record(self, table: str, record_id: str) -> None:
        """Delete a row directly (logged for change tracking, no cascades)."""
        self._call("DELETE", f"/tables/{table}/records/{record_id}")

    def set_change_tracking(self, table: str, enabled: bool) -> None:
        """Turn a table's ChangeTrackingEnabled on or off."""
        self._call("PATCH", f"/tables/{table}", {"change_tracking": enabled})

    def snapshot(self) -> dict[str, Any]:
        """Every row of every table (the input of another emulator's environment copy)."""
        result: dict[str, Any] = self._call("GET", "/snapshot")
        return result

    def set_organization(self, **values: Any) -> dict[str, Any]:
        """Change ``expirechangetrackingindays`` or ``name`` on the organization row."""
        result: dict[str, Any] = self._call("PATCH", "/organization", values)
        return result

    def now(self) -> datetime:
        """The emulator clock."""
        text = self._call("GET", "/clock")["now"]
        return datetime.fromisoformat(text.replace("Z", "+00:00"))

    def advance_clock(self, *, seconds: float = 0, days: float = 0) -> datetime:
        """Move the emulator clock forward."""
        text = self._call("POST", "/clock", {"advance_seconds": seconds, "advance_days": days})[
            "now"
        ]
        return datetime.fromisoformat(text.replace("Z", "+00:00"))

    def set_clock(self, instant: datetime, *, freeze: bool = False) -> None:
        """Jump the emulator clock to ``instant`` (optionally frozen there)."""
        self._call("POST", "/clock", {"set": instant.isoformat(), "freeze": freeze})

    def expire_change_tracking(self) -> None:
        """Make every delta token issued so far answer ExpiredVersionStamp."""
        self._call("POST", "/change-tracking/expire")

    def add_client_certificate(self, certificate_pem: str) -> str:
        """Upload a public certificate to the app registration; returns its thumbprint."""
        answer: dict[str, str] = self._call(
            "PUT", "/auth/certificates", {"certificate_pem": certificate_pem}
        )
        return answer["thumbprint"]

    def set_delta_link_moment(self, moment: str) -> None:
        """``first_page`` or ``last_page``: which moment a paged full read's delta link stands
        for (undocumented by Dataverse; the emulator serves both)."""
        self._call("PUT", "/change-tracking", {"delta_link_moment": moment})

    def copy_environment(
        self,
        *,
        source_seed: int | None = None,
        records_per_table: int = 0,
        snapshot: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Simulate a sandbox copy/refresh from a seeded source or from a snapshot."""
        if snapshot is not None:
            source: dict[str, Any] = {"snapshot": snapshot}
        else:
            source = {"seed": source_seed or 1, "records_per_table": records_per_table}
        result: dict[str, Any] = self._call("POST", "/environment/copy", {"source": source})
        return result

    def add_fault(self, **rule: Any) -> None:
        """Add a fault rule (path_prefix, methods, rates, sequence, latency_ms, ...)."""
        self._call("POST", "/faults", rule)

    def faults(self) -> dict[str, Any]:
        """Rules and how many faults were injected."""
        result: dict[str, Any] = self._call("GET", "/faults")
        return result

    def clear_faults(self, seed: int | None = None) -> None:
        """Remove every fault rule (optionally reseeding)."""
        if seed is None:
            self._call("DELETE", "/faults")
        else:
            self._call("DELETE", "/faults", None, seed=seed)

    def release_held(self) -> None:
        """Let requests held by a ``timeout`` fault finish (their connection is dropped)."""
        self._call("POST", "/faults/release")

    def limits(self) -> dict[str, Any]:
        """Service-protection settings, requests in flight and throttle counts."""
        result: dict[str, Any] = self._call("GET", "/limits")
        return result

    def set_limits(self, **settings: Any) -> dict[str, Any]:
        """Change service-protection settings (enabled, requests_per_window, ...)."""
        result: dict[str, Any] = self._call("PUT", "/limits", settings)
        return result

    def clear_limit_windows(self) -> None:
        """Forget requests counted in the sliding windows."""
        self._call("DELETE", "/limits")

    def requests(self) -> dict[str, Any]:
        """Request counters (by path, by resource, by status, batch parts, tokens)."""
        result: dict[str, Any] = self._call("GET", "/requests")
        return result

    def clear_requests(self) -> None:
        """Zero the request counters."""
        self._call("DELETE", "/requests")

    def expire_tokens(self) -> None:
        """Make every access token issued so far answer 401."""
        self._call("POST", "/auth/expire-tokens")

    def set_token_lifetime(self, seconds: int) -> None:
        """Lifetime (``expires_in``) of tokens issued from now on."""
        self._call("PUT", "/auth", {"token_lifetime_seconds": seconds})


@dataclass
class EmulatorHandle:
    """A running emulator: where it is, the credentials it accepts, and its control client."""

    base_url: str
    ca_path: str
    tenant_id: str
    client_id: str
    client_secret: str = field(repr=False)
    control: ControlClient = field(repr=False)
    pid: int | None = None

    @property
    def api_url(self) -> str:
        """``<base>/api/data/v9.2``."""
        return f"{self.base_url}/api/data/v9.2"

    @property
    def scope(self) -> str:
        """The client-credentials scope (``<base url>/.default``)."""
        return f"{self.base_url}/.default"

    @property
    def token_url(self) -> str:
        """The tenant's token endpoint."""
        return f"{self.base_url}/{self.tenant_id}/oauth2/v2.0/token"

    def azure_identity_env(self) -> dict[str, str]:
        """Environment azure-identity needs to reach this emulator's token endpoint."""
        return {"AZURE_AUTHORITY_HOST": self.base_url, "REQUESTS_CA_BUNDLE": self.ca_path}

    def ssl_context(self) -> ssl.SSLContext:
        """A TLS context that trusts the emulator's CA (httpx ``verify=``)."""
        return ssl.create_default_context(cafile=self.ca_path)

    def http_client(self, **kwargs: Any) -> httpx.Client:
        """An httpx client that trusts the emulator's CA."""
        return httpx.Client(verify=self.ssl_context(), **kwargs)

    def fetch_token(self, http: httpx.Client) -> str:
        """A bearer token via the client-credentials grant."""
        response = http.post(
            self.token_url,
            data={
                "client_id": self.client_id,
                "client_secret": self.client_secret,
                "grant_type": "client_credentials",
                "scope": self.scope,
            },
        )
        response.raise_for_status()
        token: str = response.json()["access_token"]
        return token


@contextmanager
def run_dynamics_emulator(
    mode: Literal["thread", "subprocess"] = "thread",
    *,
    seed: int = 0,
    records: int = 0,
    config: EmulatorConfig | None = None,
    host: str = "127.0.0.1",
    startup_timeout: float = 60.0,
) -> Iterator[EmulatorHandle]:
    """Run an emulator on a free port for the duration of the ``with`` block."""
    config = config or EmulatorConfig()
    ca_dir = Path(tempfile.mkdtemp(prefix="dmsync-dynamics-"))
    try:
        if mode == "thread":
            with _thread_emulator(config, seed, records, host, ca_dir) as handle:
                yield handle
        else:
            with _subprocess_emulator(
                config, seed, records, host, ca_dir, startup_timeout
            ) as handle:
                yield handle
    finally:
        shutil.rmtree(ca_dir, ignore_errors=True)


def _handle(config: EmulatorConfig, base_url: str, ca_path: str, pid: int | None) -> EmulatorHandle:
    return EmulatorHandle(
        base_url=base_url,
        ca_path=ca_path,
        tenant_id=config.auth.tenant_id,
        client_id=config.auth.client_id,
        client_secret=config.auth.client_secret,
        control=ControlClient(base_url, ca_path),
        pid=pid,
    )


@contextmanager
def _thread_emulator(
    config: EmulatorConfig, seed: int, records: int, host: str, ca_dir: Path
) -> Iterator[EmulatorHandle]:
    from emulators.dynamics.app import Emulator
    from emulators.dynamics.control import SeedRequest, seed_environment
    from emulators.dynamics.server import prepare, start_in_thread

    emulator = Emulator(config, seed=seed)
    if records:
        seed_environment(emulator.env, SeedRequest(records_per_table=records), seed)
    running = start_in_thread(prepare(emulator, host, 0, ca_dir))
    handle = _handle(config, running.base_url, str(running.tls.ca_path), None)
    try:
        yield handle
    finally:
        handle.control.close()
        running.stop()


@contextmanager
def _subprocess_emulator(
    config: EmulatorConfig,
    seed: int,
    records: int,
    host: str,
    ca_dir: Path,
    startup_timeout: float,
) -> Iterator[EmulatorHandle]:
    config_path = ca_dir / "emulator-config.json"
    config_path.write_text(config.model_dump_json(exclude={"auth": {"client_secret"}}))
    command = [
        sys.executable, "-m", "dmsync.cli", "emulator", "dynamics",
        "--host", host, "--port", "0", "--seed", str(seed), "--records", str(records),
        "--ca-dir", str(ca_dir), "--config", str(config_path),
    ]  # fmt: skip
    env = {**os.environ, "DYNAMICS_EMULATOR_CLIENT_SECRET": config.auth.client_secret}
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and module, no shell
        command,
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        base_url = _read_listening_line(process, startup_timeout)
        handle = _handle(config, base_url, str(ca_dir / "ca.pem"), process.pid)
        try:
            yield handle
        finally:
            handle.control.close()
    finally:
        stop_group(process, timeout=15)


def _read_listening_line(process: subprocess.Popen[str], timeout: float) -> str:
    assert process.stdout is not None
    result: list[str] = []
    reader = threading.Thread(target=lambda: result.append(process.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(timeout)
    line = result[0].strip() if result else ""
    if not line.startswith("listening on "):
        raise RuntimeError(f"the Dynamics emulator did not start (first line: {line!r})")
    return line.removeprefix("listening on ")
