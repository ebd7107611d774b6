"""The runner in subprocess mode runs ``dmsync emulator marketo`` and stops it."""

from __future__ import annotations

import httpx

from dmsync.cli import build_parser
from emulators.marketo.config import config_from_dict
from emulators.marketo.runner import run_marketo_emulator


def test_cli_options_parse() -> None:
    args = build_parser().parse_args(
        ["emulator", "marketo", "--port", "0", "--no-limits", "--generate-leads", "5"]
    )
    assert args.port == 0 and args.no_limits and args.generate_leads == 5


def test_subprocess_mode_serves_the_configured_instance() -> None:
    config = config_from_dict(
        {
            "clients": [{"client_id": "bench", "client_secret": "s3cret-value"}],
            "munchkin_id": "999-SUB-001",
        }
    )
    with run_marketo_emulator(config, mode="subprocess") as mkto:
        assert mkto.control.health() == {"status": "ok", "munchkinId": "999-SUB-001"}
        token = httpx.get(f"{mkto.identity_url}/oauth/token", params=mkto.credentials).json()[
            "access_token"
        ]
        response = httpx.post(
            f"{mkto.base_url}/rest/v1/leads.json",
            headers={"Authorization": f"Bearer {token}"},
            json={"input": [{"email": "sub@example.com"}]},
        )
        assert response.json()["result"][0]["status"] == "created"
        query = httpx.post(  # _method=GET inside the form body, as clients send it
            f"{mkto.base_url}/rest/v1/leads.json",
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/x-www-form-urlencoded",
            },
            content=b"_method=GET&filterType=email&filterValues=sub%40example.com&fields=email",
        )
        assert query.json()["result"] == [{"email": "sub@example.com"}]
        url = mkto.base_url
    try:
        httpx.get(f"{url}/_emulator/health", timeout=2)
        raise AssertionError("the emulator still answers after the runner exited")
    except httpx.TransportError:
        pass
