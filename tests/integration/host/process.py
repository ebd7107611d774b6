"""Running ``dmsync host`` as a real subprocess, with a clean environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
_SCRIPT = Path(sys.executable).parent / "dmsync"
DMSYNC = (
    [str(_SCRIPT), "host"] if _SCRIPT.exists() else [sys.executable, "-m", "dmsync.cli", "host"]
)
"""The installed ``dmsync`` console script (``make setup`` puts it in .venv/bin)."""


def clean_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without storage or host settings (so files decide them)."""
    drop = ("azurewebjobsstorage", "azurefunctionsjobhost__", "python_script_file_name")
    env = {k: v for k, v in os.environ.items() if not k.lower().startswith(drop)}
    env["PYTHONPATH"] = str(REPO_ROOT)
    env.update(extra or {})
    return env


def write_settings(path: Path, values: Mapping[str, str]) -> Path:
    """A local.settings.json with ``values``."""
    path.write_text(json.dumps({"IsEncrypted": False, "Values": dict(values)}))
    return path


def start_host(args: Sequence[str], env: Mapping[str, str]) -> subprocess.Popen[str]:
    """Start ``dmsync host`` with ``args``; stdout and stderr are captured as text."""
    return subprocess.Popen(
        [*DMSYNC, *args],
        cwd=REPO_ROOT,
        env=dict(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run_host(args: Sequence[str], env: Mapping[str, str], timeout: float = 60) -> tuple[int, str]:
    """Run ``dmsync host`` to completion; returns (exit status, stderr)."""
    process = start_host(args, env)
    try:
        _, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        _, stderr = process.communicate()
        raise AssertionError(f"dmsync host did not exit within {timeout} s:\n{stderr}") from None
    return process.returncode, stderr
