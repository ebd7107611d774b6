"""The two component benchmarks, run as they are (their own processes) and folded into the report.

* ``bench/dynamics_emulator_bench.py``: how fast the Dataverse emulator serves 5,000-row pages
  (it must not be what limits the sync);
* ``bench/governor_bench.py``: sustained load through the Marketo governor at 100 calls / 20 s
  against the emulator at the real limits (no 606/615, no window over 100).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parents[1]


def run_script(name: str, *arguments: str, timeout: float = 600) -> dict[str, Any]:
    """Run ``bench/<name>`` with ``--json``; its results, exit status and wall time."""
    with tempfile.TemporaryDirectory(prefix="dmsync-bench-") as folder:
        out = Path(folder) / "result.json"
        started = time.monotonic()
        completed = subprocess.run(
            [sys.executable, str(BENCH_DIR / name), *arguments, "--json", str(out)],
            cwd=BENCH_DIR.parent,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        seconds = time.monotonic() - started
        result: dict[str, Any] = json.loads(out.read_text()) if out.exists() else {}
    last_line = (completed.stdout.strip().splitlines() or [""])[-1]
    return {
        "exit_status": completed.returncode,
        "ok": completed.returncode == 0,
        "verdict": last_line,
        "seconds": round(seconds, 1),
        "results": result,
        **({"stderr": completed.stderr[-2000:]} if completed.returncode else {}),
    }
