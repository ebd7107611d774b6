"""Fixtures for the infra checks: each external tool runs once per session.

The tools live outside the app's venv (``make infra-tools``): pycep-parser and checkov in
``.venv-infra``, the Kusto language service in ``infra/tools/kql/node_modules``. A missing tool
fails the test with the command that installs it; nothing is skipped.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"
QUERIES = INFRA / "queries"
VENV_INFRA_BIN = REPO / ".venv-infra" / "bin"
KQL_TOOL = INFRA / "tools" / "kql"

# A storage account that breaks the rules checkov must catch (proves the scan can fail).
BAD_STORAGE_BICEP = """\
param location string = resourceGroup().location

resource weak 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: 'weakstorage${uniqueString(resourceGroup().id)}'
  location: location
  kind: 'StorageV2'
  sku: {
    name: 'Standard_GRS'
  }
  properties: {
    minimumTlsVersion: 'TLS1_0'
    supportsHttpsTrafficOnly: false
    allowBlobPublicAccess: true
    networkAcls: {
      defaultAction: 'Deny'
      bypass: 'AzureServices'
    }
  }
}
"""


def require(path: Path) -> Path:
    """``path`` if it exists, else fail naming the make target that installs it."""
    if not path.exists():
        pytest.fail(f"{path.relative_to(REPO)} is missing: run `make infra-tools` first")
    return path


def run_json(args: list[str], *, ok_codes: tuple[int, ...] = (0,), **kwargs: Any) -> list[Any]:
    """Run a tool; return the JSON documents it printed (checkov prints one per directory).

    Fails with the tool's stderr on an unexpected exit code.
    """
    completed = subprocess.run(
        args, capture_output=True, text=True, timeout=180, check=False, **kwargs
    )
    if completed.returncode not in ok_codes:
        pytest.fail(
            f"{' '.join(args[:3])}... exited {completed.returncode}:\n"
            f"{completed.stderr[-4000:]}\n{completed.stdout[-4000:]}"
        )
    decoder, text, documents = json.JSONDecoder(), completed.stdout, []
    position = 0
    while text[position:].strip():
        position += len(text[position:]) - len(text[position:].lstrip())
        document, position = decoder.raw_decode(text, position)
        documents.append(document)
    return documents


@pytest.fixture(scope="session")
def bicep_facts() -> dict[str, Any]:
    """pycep trees of every Bicep file and the parsed azure.yaml (infra/tools/bicep_facts.py)."""
    python = require(VENV_INFRA_BIN / "python")
    (facts,) = run_json([str(python), str(INFRA / "tools" / "bicep_facts.py"), str(REPO)])
    return dict(facts)


@pytest.fixture(scope="session")
def trees(bicep_facts: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Path (relative to the repo) -> pycep tree, for the files that parsed."""
    return {path: entry["tree"] for path, entry in bicep_facts["bicep"].items() if entry["ok"]}


@pytest.fixture(scope="session")
def main_tree(trees: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The pycep tree of infra/main.bicep."""
    return trees["infra/main.bicep"]


@pytest.fixture(scope="session")
def checkov_report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One offline checkov run over infra/ plus a deliberately weak sample (its own folder)."""
    checkov = require(VENV_INFRA_BIN / "checkov")
    bad = tmp_path_factory.mktemp("checkov-bad")
    (bad / "weak.bicep").write_text(BAD_STORAGE_BICEP, encoding="utf-8")
    env = {
        **os.environ,
        # Offline: no Bridgecrew/Prisma platform, no policy or guideline downloads.
        "BC_SKIP_MAPPING": "TRUE",
        "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false",
        "PRISMA_API_URL": "",
        "BC_API_KEY": "",
    }
    args = [
        str(checkov),
        "--directory", str(INFRA),
        "--directory", str(bad),
        "--framework", "bicep", "secrets",
        "--skip-path", "node_modules",
        "--skip-download",
        "--output", "json",
    ]  # fmt: skip
    # checkov exits 1 when any check fails, which the weak sample makes sure of. It prints one
    # report (or a list of them, one per framework) per directory: merge them per framework.
    merged: dict[str, Any] = {}
    for document in run_json(args, ok_codes=(1,), env=env, cwd=REPO):
        for report in document if isinstance(document, list) else [document]:
            into = merged.setdefault(
                report["check_type"],
                {"results": {"passed_checks": [], "failed_checks": [], "skipped_checks": []},
                 "summary": {"parsing_errors": 0}},
            )  # fmt: skip
            for kind, results in into["results"].items():
                results.extend(report["results"].get(kind, []))
            into["summary"]["parsing_errors"] += report["summary"]["parsing_errors"]
    return merged


@pytest.fixture(scope="session")
def kql_report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Kusto language service diagnostics and result columns for every query file, plus a
    deliberately broken query (under the key ``"broken"``)."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not on PATH (the KQL check needs Node.js, as Azurite does)")
    require(KQL_TOOL / "node_modules" / "@kusto" / "language-service-next")
    broken = tmp_path_factory.mktemp("kql") / "broken.kql"
    broken.write_text(
        'customMetrics\n| where nmae == "dmsync.backlog"\n| summarize by\n', encoding="utf-8"
    )
    files = sorted(str(p) for p in QUERIES.glob("*.kql"))
    # Exit code 1 is expected: the broken query has errors.
    (report,) = run_json([node, str(KQL_TOOL / "check-kql.js"), *files, str(broken)], ok_codes=(1,))
    results: dict[str, Any] = {Path(path).name: result for path, result in report["files"].items()}
    results["broken"] = results.pop("broken.kql")
    return results
