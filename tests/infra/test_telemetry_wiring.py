"""OpenTelemetry is wired as "Use OpenTelemetry with Azure Functions"
describes, so logs reach App Insights once."""

from __future__ import annotations

import ast
import json
from pathlib import Path

from tests.infra.conftest import REPO

APP_SOURCES = [REPO / "function_app.py", *sorted((REPO / "shared").rglob("*.py"))]
APP_SOURCES += sorted((REPO / "functions").rglob("*.py"))


def test_host_runs_in_opentelemetry_mode() -> None:
    """host.json telemetryMode is OpenTelemetry and the bundle is one Flex accepts (Flex
    Consumption plan docs)."""
    host = json.loads((REPO / "host.json").read_text(encoding="utf-8"))
    assert host["telemetryMode"] == "OpenTelemetry"
    assert host["version"] == "2.0"
    assert host["extensionBundle"]["version"].startswith("[4.")


def test_the_worker_has_the_distro_to_export_with() -> None:
    """azure-monitor-opentelemetry is a pinned runtime dependency (the worker imports it)."""
    pins = (REPO / "requirements.txt").read_text(encoding="utf-8").split()
    assert any(line.startswith("azure-monitor-opentelemetry==") for line in pins)


def _calls(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call):
            func = node.func
            names.add(func.id if isinstance(func, ast.Name) else getattr(func, "attr", ""))
    return names


def test_the_app_never_configures_an_exporter_itself() -> None:
    """The worker calls configure_azure_monitor (PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY);
    a second call from app code would ship every log twice."""
    offenders = [
        str(path.relative_to(REPO))
        for path in APP_SOURCES
        if _calls(path) & {"configure_azure_monitor", "set_logger_provider", "set_meter_provider"}
    ]
    assert offenders == []


def test_the_entry_point_installs_redaction_before_registering_functions() -> None:
    """function_app.py calls configure_logging() at import, before the app is created."""
    tree = ast.parse((REPO / "function_app.py").read_text(encoding="utf-8"))
    order = [
        node.value.func.id
        for node in tree.body
        if isinstance(node, ast.Expr | ast.Assign)
        and isinstance(node.value, ast.Call)
        and isinstance(node.value.func, ast.Name)
    ]
    assert "configure_logging" in order
    assert tree.body.index(
        next(n for n in tree.body if isinstance(n, ast.Expr) and "configure_logging" in ast.dump(n))
    ) < tree.body.index(next(n for n in tree.body if isinstance(n, ast.Assign)))
