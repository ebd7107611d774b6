"""checkov (offline; bicep and secrets frameworks) passes infra/, every skip justified in place."""

from __future__ import annotations

import re
from typing import Any

from tests.infra.conftest import INFRA, REPO

SKIP_COMMENT = re.compile(r"//\s*checkov:skip=(CKV\w*_\d+):(.*)$", re.MULTILINE)


def infra_results(report: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    """The results of one kind (passed/failed/skipped) whose file is under infra/."""
    return [
        r for r in report["results"][f"{kind}_checks"] if r["file_abs_path"].startswith(str(INFRA))
    ]


def test_checkov_finds_no_failed_check_in_infra(checkov_report: dict[str, Any]) -> None:
    """Zero failed checks and zero parse errors; checkov actually inspected the resources."""
    bicep = checkov_report["bicep"]
    failed = [
        f"{r['check_id']} {r['resource']} ({r['file_path']})"
        for r in infra_results(bicep, "failed")
    ]
    assert failed == []
    assert bicep["summary"]["parsing_errors"] == 0
    assert len(infra_results(bicep, "passed")) >= 25
    scanned = {r["file_abs_path"] for r in infra_results(bicep, "passed")}
    for module in ("storage", "functionapp", "keyvault", "keyvault-secret"):
        assert str(INFRA / "modules" / f"{module}.bicep") in scanned


def test_checkov_can_fail(checkov_report: dict[str, Any]) -> None:
    """The same run flags a weak storage account: the scan is live, not vacuous."""
    weak = {
        r["check_id"]
        for r in checkov_report["bicep"]["results"]["failed_checks"]
        if r["file_abs_path"].endswith("weak.bicep")
    }
    assert {"CKV_AZURE_3", "CKV_AZURE_44"} <= weak  # HTTPS only; TLS 1.2


def test_no_secret_is_committed_in_infra(checkov_report: dict[str, Any]) -> None:
    """The secrets framework found nothing (it reports only when it finds something)."""
    secrets = checkov_report.get("secrets")
    findings = infra_results(secrets, "failed") if secrets else []
    assert findings == []


def test_every_skip_is_justified_where_it_is_made(checkov_report: dict[str, Any]) -> None:
    """Each skip has a real reason next to it, and every skip comment still matches a check."""
    skipped = infra_results(checkov_report["bicep"], "skipped")
    assert skipped, "expected the documented skips (public network access without a VNet, ...)"
    for result in skipped:
        reason = result["check_result"].get("suppress_comment", "")
        assert len(reason) >= 40, f"{result['check_id']} in {result['file_path']}: {reason!r}"
    used = {(r["file_abs_path"], r["check_id"]) for r in skipped}
    for path in sorted(INFRA.rglob("*.bicep")):
        for check_id, reason in SKIP_COMMENT.findall(path.read_text(encoding="utf-8")):
            where = f"{path.relative_to(REPO)} {check_id}"
            assert (str(path), check_id) in used, f"stale skip: {where}"
            assert len(reason.strip()) >= 40, f"unjustified skip: {where}"
