"""``bench/results/latest.json``, the printed figures and the table in docs/benchmarks.md.

Every figure is reported with how it was measured; each target carries its value and pass/fail.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.syncbench import figures
from bench.syncbench.figures import Target

REPO_ROOT = Path(__file__).resolve().parents[2]
RESULTS = REPO_ROOT / "bench" / "results" / "latest.json"
README = REPO_ROOT / "docs" / "benchmarks.md"
"""Where the Benchmarks table lives (between its markers)."""
TABLE_START = "<!-- bench:table:start -->"
TABLE_END = "<!-- bench:table:end -->"

TARGET_BOUND_SHARE = 0.90
TARGET_CALL_RATIO = 1.05
TARGET_CPU_US = 150.0
TARGET_PEAK_MB = 300.0
TARGET_P95_SECONDS = 75.0

MARKETO_WRITE_ENDPOINTS = (
    "POST /rest/v1/leads.json",
    "POST /rest/v1/companies.json",
    "POST /rest/v1/salespersons.json",
)


def git_info() -> dict[str, Any]:
    """The commit measured, and whether the tree had uncommitted changes."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()

    return {
        "commit": git("rev-parse", "HEAD"),
        "branch": git("rev-parse", "--abbrev-ref", "HEAD"),
        "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
    }


def machine_info() -> dict[str, Any]:
    """Where it ran (the machine is shared: the load average says how busy it was)."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        memory_kb = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
    except (OSError, StopIteration):
        memory_kb = 0
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_model": model,
        "cpus": os.cpu_count(),
        "memory_gb": round(memory_kb / 1024 / 1024, 1),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def marketo_figures(usage: dict[str, Any], written: dict[str, int]) -> dict[str, Any]:
    """Calls Marketo saw (its own counters) against the ideal ``Σ ⌈n/300⌉``."""
    records = sum(written.values())
    calls = int(usage["requests"]) - int(usage["identity_calls"])
    writes = sum(int(usage["by_endpoint"].get(e, 0)) for e in MARKETO_WRITE_ENDPOINTS)
    ideal = figures.ideal_writes(written)
    return {
        "records_written": records,
        "calls": calls,
        "write_calls": writes,
        "other_calls": calls - writes,
        "counted_against_limits": usage["counted"],
        "identity_calls": usage["identity_calls"],
        "ideal_calls": ideal,
        "calls_per_1000_records": round(figures.per_thousand(calls, records), 3),
        "ideal_per_1000_records": round(figures.per_thousand(ideal, records), 3),
        "ratio_to_ideal": round(calls / ideal, 4),
        "write_ratio_to_ideal": round(writes / ideal, 4),
        "by_endpoint": usage["by_endpoint"],
        "errors": usage["errors"],
        "max_calls_in_20s_window": usage["max_calls_in_window"],
        "max_concurrency": usage["max_concurrency"],
    }


def dynamics_figures(
    requests: dict[str, Any], rows: dict[str, int], entity_sets: dict[str, str]
) -> dict[str, Any]:
    """Web API requests Dataverse saw (its own counters) against the ideal ``Σ ⌈n/5000⌉``."""
    records = sum(rows.values())
    calls = int(requests["total"])
    by_resource: dict[str, int] = requests["by_resource"]
    table_gets = sum(by_resource.get(f"GET {entity_sets[t]}", 0) for t in rows)
    ideal = figures.ideal_reads(rows)
    return {
        "records_read": records,
        "calls": calls,
        "table_reads": table_gets,
        "other_calls": calls - table_gets,
        "token_requests": requests["token_requests"],
        "ideal_calls": ideal,
        "calls_per_1000_records": round(figures.per_thousand(calls, records), 3),
        "ideal_per_1000_records": round(figures.per_thousand(ideal, records), 3),
        "ratio_to_ideal": round(calls / ideal, 4),
        "table_read_ratio_to_ideal": round(table_gets / ideal, 4),
        "by_resource": by_resource,
    }


def subtract(after: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
    """Counter snapshots ``after - before`` (numbers and nested dicts of numbers)."""
    out: dict[str, Any] = {}
    for key, value in after.items():
        old = before.get(key)
        if isinstance(value, dict):
            out[key] = {
                k: v - (old or {}).get(k, 0) for k, v in value.items() if v != (old or {}).get(k)
            }
        elif isinstance(value, int | float) and isinstance(old, int | float):
            out[key] = value - old
        else:
            out[key] = value
    return out


def targets(result: dict[str, Any]) -> list[Target]:
    """The issue's five targets (six figures: both APIs' call counts) from the assembled result."""
    initial = result["initial_sync"]
    found = [
        Target(
            "throughput_share_of_steady_bound",
            initial["records_per_second"] / figures.STEADY_RECORDS_PER_SECOND,
            TARGET_BOUND_SHARE,
            "of 1,500 records/s",
            True,
        ),
        Target(
            "marketo_calls_vs_ideal",
            initial["marketo"]["ratio_to_ideal"],
            TARGET_CALL_RATIO,
            "× ideal",
            False,
        ),
        Target(
            "dynamics_calls_vs_ideal",
            initial["dynamics"]["ratio_to_ideal"],
            TARGET_CALL_RATIO,
            "× ideal",
            False,
        ),
        Target("cpu_us_per_record", initial["cpu_us_per_record"], TARGET_CPU_US, "µs", False),
        Target("peak_memory_mb", initial["peak_rss_mb"], TARGET_PEAK_MB, "MB", False),
    ]
    latency = result.get("incremental_latency")
    if latency and latency.get("p95_seconds") is not None:
        found.append(
            Target("latency_p95_seconds", latency["p95_seconds"], TARGET_P95_SECONDS, "s", False)
        )
    return found


def finish(result: dict[str, Any]) -> dict[str, Any]:
    """Add the targets, git and machine information, and when it ran."""
    checked = targets(result)
    return {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "git": git_info(),
        "machine": machine_info(),
        **result,
        "targets": {t.name: t.as_json() for t in checked},
        "all_targets_pass": figures.all_passed(checked),
    }


def write(result: dict[str, Any], path: Path = RESULTS) -> None:
    """Write ``latest.json``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, ensure_ascii=False, default=str) + "\n")


def table(result: dict[str, Any]) -> str:
    """The measured figures against their targets, as a Markdown table."""
    initial = result["initial_sync"]
    mkto, dyn = initial["marketo"], initial["dynamics"]
    checks = result["targets"]

    def verdict(name: str) -> str:
        return "pass" if checks[name]["pass"] else "**miss**"

    rows = [
        ("figure", "measured", "target", ""),
        (
            "records synced (initial)",
            f"{initial['records']:,} in {initial['seconds']:.1f} s",
            "",
            "",
        ),
        (
            "records/s",
            f"{initial['records_per_second']:,.0f} ({initial['share_of_steady_bound']:.0%} of "
            f"1,500/s steady; {initial['share_of_burst_bound']:.0%} of the burst bound "
            f"{initial['burst_bound_records_per_second']:,.0f}/s)",
            "≥ 90 % of the bound",
            verdict("throughput_share_of_steady_bound"),
        ),
        (
            "Marketo calls / 1,000 records",
            f"{mkto['calls_per_1000_records']:.2f} ({mkto['calls']} calls; ideal "
            f"{mkto['ideal_per_1000_records']:.2f}, {mkto['ideal_calls']}; "
            f"×{mkto['ratio_to_ideal']:.3f})",
            "≤ 1.05 × ideal",
            verdict("marketo_calls_vs_ideal"),
        ),
        (
            "Dynamics calls / 1,000 records",
            f"{dyn['calls_per_1000_records']:.2f} ({dyn['calls']} calls; ideal "
            f"{dyn['ideal_per_1000_records']:.2f}, {dyn['ideal_calls']}; "
            f"×{dyn['ratio_to_ideal']:.3f})",
            "≤ 1.05 × ideal",
            verdict("dynamics_calls_vs_ideal"),
        ),
        (
            "CPU per record (host process)",
            f"{initial['cpu_us_per_record']:.0f} µs ({initial['cpu_seconds']:.2f} s)",
            "≤ 150 µs",
            verdict("cpu_us_per_record"),
        ),
        (
            "peak memory (host VmHWM)",
            f"{initial['peak_rss_mb']:.0f} MB",
            "≤ 300 MB",
            verdict("peak_memory_mb"),
        ),
    ]
    processes = initial.get("cpu_seconds_by_process", {})
    if processes:
        rows.append(
            (
                "CPU during the initial sync",
                ", ".join(f"{k.replace('_', ' ')} {v:.1f} s" for k, v in processes.items())
                + f" (of {initial['seconds'] * (result['machine']['cpus'] or 1):.0f} s on "
                f"{result['machine']['cpus']} cores)",
                "",
                "",
            )
        )
    steady = result.get("steady_state")
    if steady:
        rows.append(
            (
                f"larger run: {steady['records']:,} records",
                f"{steady['seconds']:.1f} s, {steady['records_per_second']:,.0f}/s "
                f"({steady['share_of_steady_bound']:.0%} of 1,500/s), "
                f"{steady['cpu_us_per_record']:.0f} µs CPU/record, Marketo calls "
                f"×{steady['marketo']['ratio_to_ideal']:.3f} of ideal",
                "(information)",
                "",
            )
        )
    latency = result.get("incremental_latency")
    if latency and "latency_p95_seconds" in checks:
        rows.append(
            (
                f"change → Marketo, {latency['changes']} changes",
                f"p50 {latency['p50_seconds']:.1f} s, p95 {latency['p95_seconds']:.1f} s, "
                f"max {latency['max_seconds']:.1f} s ({latency['missing']} missing)",
                "p95 ≤ 75 s",
                verdict("latency_p95_seconds"),
            )
        )
    lines = ["| " + " | ".join(rows[0]) + " |", "|---|---|---|---|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    return "\n".join(lines)


def update_readme(result: dict[str, Any], path: Path = README) -> bool:
    """Replace the table between the page's bench markers; ``False`` if they are missing."""
    text = path.read_text(encoding="utf-8")
    if TABLE_START not in text or TABLE_END not in text:
        return False
    head, rest = text.split(TABLE_START, 1)
    _, tail = rest.split(TABLE_END, 1)
    commit = result["git"]["commit"][:10]
    stamp = f"Measured {result['generated_at']} at commit `{commit}`" + (
        " (with uncommitted changes)" if result["git"]["dirty"] else ""
    )
    params = result["parameters"]
    body = (
        f"{stamp}, {params['contacts']:,} contacts and {params['accounts']:,} accounts, on "
        f"{result['machine']['cpus']} CPUs (load average at start "
        f"{result['parameters']['load_average_at_start'][0]}):\n\n{table(result)}\n"
    )
    path.write_text(f"{head}{TABLE_START}\n{body}{TABLE_END}{tail}", encoding="utf-8")
    return True
