"""The workbook and alert queries: valid KQL, reading the metrics and dimensions the app emits.

Syntax and semantics are checked by Microsoft's Kusto language service (npm
@kusto/language-service-next) against the Application Insights table schema
(infra/tools/kql/check-kql.js); that also yields each query's result columns.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from shared.jobs import Direction
from shared.telemetry import ApiOutcome, Dim, JobEnding, Metric, RecordTally, System
from tests.infra.bicep_tree import body, functions
from tests.infra.conftest import QUERIES, REPO

METRIC_LITERAL = re.compile(r"\"(dmsync\.[A-Za-z0-9_.]+)\"")
DIMENSION = re.compile(r"customDimensions\[\"([^\"]+)\"\]")
DOTTED_DIMENSION = re.compile(r"customDimensions\.\w+")
# Literals compared with a dimension: outcome == "written", system in ("marketo").
COMPARED = re.compile(
    r"(outcome|system|direction)\"?\]?\)?\s*(?:==|in)\s*\(?((?:\"[^\"]*\"\s*,?\s*)+)\)?"
)


def query_files() -> list[Path]:
    return sorted(QUERIES.glob("*.kql"))


def test_every_query_is_valid_kql(kql_report: dict[str, Any]) -> None:
    """No parse or semantic diagnostic (unknown table, column or function) in any query."""
    names = {p.name for p in query_files()}
    assert names <= set(kql_report)
    problems = {
        name: result["diagnostics"]
        for name, result in kql_report.items()
        if name in names and result["diagnostics"]
    }
    assert problems == {}
    assert len(names) >= 10


def test_the_checker_reports_broken_queries(kql_report: dict[str, Any]) -> None:
    """A misspelt column and a dangling 'summarize by' are errors: the check is not vacuous."""
    codes = {d["code"] for d in kql_report["broken"]["diagnostics"] if d["severity"] == "Error"}
    assert "KS142" in codes  # the name does not refer to any known column
    assert "KS006" in codes  # missing expression


def test_queries_read_only_metrics_and_dimensions_the_app_emits() -> None:
    """Every metric name and customDimensions key in a query is defined in names.py, and every
    compared dimension value is one the app records."""
    metric_names = {m.value for m in Metric}
    dimension_names = {d.value for d in Dim}
    values = {
        "outcome": {v.value for e in (RecordTally, ApiOutcome, JobEnding) for v in e},
        "system": {s.value for s in System},
        "direction": {d.value for d in Direction},
    }
    read: set[str] = set()
    for path in query_files():
        text = path.read_text(encoding="utf-8")
        used = set(METRIC_LITERAL.findall(text))
        assert used <= metric_names, f"{path.name}: unknown metrics {used - metric_names}"
        read |= used
        keys = set(DIMENSION.findall(text))
        assert keys <= dimension_names, f"{path.name}: unknown dimensions {keys - dimension_names}"
        assert not DOTTED_DIMENSION.search(text), f'{path.name}: use customDimensions["key"]'
        for dimension, literals in COMPARED.findall(text):
            compared = set(re.findall(r"\"([^\"]*)\"", literals))
            assert compared <= values[dimension], f"{path.name}: {dimension} {compared}"
    assert read == metric_names, f"emitted but shown nowhere: {metric_names - read}"


def _loaded_queries(trees: dict[str, dict[str, Any]]) -> dict[str, list[tuple[str, Path]]]:
    """Bicep file -> [(kql path as written, resolved path)] for every loadTextContent()."""
    loaded: dict[str, list[tuple[str, Path]]] = {}
    for path, tree in trees.items():
        for call in functions(tree, "load_text_content"):
            written = call["file_path"]
            loaded.setdefault(path, []).append(
                (written, ((REPO / path).parent / written).resolve())
            )
    return loaded


def test_bicep_loads_every_query_file_and_only_existing_ones(
    trees: dict[str, dict[str, Any]],
) -> None:
    """Each loadTextContent() path exists; each query file is used by the workbook or alerts."""
    loaded = _loaded_queries(trees)
    targets = {resolved for entries in loaded.values() for _, resolved in entries}
    missing = {str(t) for t in targets if not t.is_file()}
    assert missing == set()
    assert {p.resolve() for p in query_files()} == targets
    assert set(loaded) == {"infra/modules/workbook.bicep", "infra/modules/alerts.bicep"}


def test_alert_thresholds_replace_a_line_that_exists(trees: dict[str, dict[str, Any]]) -> None:
    """replace(loadTextContent(q), old, new): 'old' occurs exactly once in q, so the parameter
    really changes the query."""
    alerts = trees["infra/modules/alerts.bicep"]
    replacements = list(functions(alerts, "replace"))
    assert len(replacements) == 2
    for call in replacements:
        source = call["original_string"]["function"]["parameters"]["file_path"]
        text = (REPO / "infra" / "modules" / source).resolve().read_text(encoding="utf-8")
        assert text.count(call["old_string"]) == 1, (source, call["old_string"])
        assert call["old_string"].startswith("let ") and "${" in call["new_string"]


def test_alert_dimensions_are_string_columns_of_their_query(
    trees: dict[str, dict[str, Any]], kql_report: dict[str, Any]
) -> None:
    """An alert rule can split only by a string column its query returns."""
    alerts = trees["infra/modules/alerts.bicep"]
    variables = alerts["variables"]
    rules = {
        name: body(resource)
        for name, resource in alerts["resources"].items()
        if resource["type"] == "Microsoft.Insights/scheduledQueryRules"
    }
    assert set(rules) == {"poisonMessages", "syncStalled", "marketoQuota", "instanceSuspended"}
    for name, rule in rules.items():
        (criterion,) = rule["properties"]["criteria"]["allOf"]
        query = criterion["query"]
        if isinstance(query, str):  # a variable holding replace(loadTextContent(...))
            query = variables[query]["value"]["function"]["parameters"]["original_string"]
        query_file = Path(query["function"]["parameters"]["file_path"]).name
        columns = {c["name"]: c["type"] for c in kql_report[query_file]["columns"]}
        for dimension in criterion.get("dimensions") or []:
            assert columns.get(dimension["name"]) == "string", (name, dimension["name"], columns)
        assert criterion["operator"] == "GreaterThan" and criterion["threshold"] == 0


def test_readme_documents_every_query() -> None:
    """The deployment docs' operator section names each query file."""
    readme = (REPO / "docs" / "deploying.md").read_text(encoding="utf-8")
    undocumented = [p.name for p in query_files() if p.name not in readme]
    assert undocumented == []
