"""The app under test: ``dmsync host`` on the repository's ``function_app.py``, as a subprocess.

While it runs, a sampler thread reads its CPU time and memory from ``/proc`` every
:data:`SAMPLE_SECONDS` (see :mod:`.procstat`), and a reader thread copies its log (stderr) to a
file and keeps the lines with their arrival time, so phases can be cut at known moments: the
timer's announced first occurrence, an invocation's "Executed" line.
"""

from __future__ import annotations

import bisect
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TextIO

from bench.syncbench.procstat import ProcSample, read_machine_busy, read_sample
from emulators.process_group import stop_group

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE_SECONDS = 0.1
_NEXT_OCCURRENCE = re.compile(r"timer schedule_sync: .* next occurrence (\S+?)(,|$)")


@dataclass(frozen=True)
class LogLine:
    """One line of the host's log and when the bench read it."""

    at: float
    """``time.monotonic()``."""
    text: str


def interpolate(points: list[tuple[float, float]], moment: float) -> float:
    """The value at ``moment`` of a counter sampled as sorted ``(time, value)`` points."""
    if not points:
        raise RuntimeError("no samples")
    times = [t for t, _ in points]
    index = bisect.bisect_left(times, moment)
    if index == 0:
        return points[0][1]
    if index >= len(points):
        return points[-1][1]
    (t0, v0), (t1, v1) = points[index - 1], points[index]
    share = (moment - t0) / (t1 - t0) if t1 > t0 else 1.0
    return v0 + share * (v1 - v0)


class HostProcess:
    """A running ``dmsync host`` with its CPU/memory samples and log lines."""

    def __init__(
        self,
        settings: dict[str, str],
        workdir: Path,
        log_path: Path,
        others: dict[str, int] | None = None,
    ) -> None:
        """Start the host; ``others`` are more processes to sample (``{role: pid}``)."""
        settings_file = workdir / "local.settings.json"
        # An explicit settings file, so a developer's own local.settings.json is never read;
        # the values also go into the environment (which wins, as with func start).
        settings_file.write_text(json.dumps({"IsEncrypted": False, "Values": settings}))
        os.chmod(settings_file, 0o600)  # it holds the emulators' (local, test) secrets
        command = [
            sys.executable, "-m", "dmsync.cli", "host",
            "--app", str(REPO_ROOT / "function_app.py"),
            "--settings", str(settings_file),
        ]  # fmt: skip
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log_file: TextIO = log_path.open("w", encoding="utf-8")
        self.process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env={**os.environ, **settings},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self.pid = self.process.pid
        self.started_at = time.monotonic()
        self.samples: list[ProcSample] = []
        self.others = dict(others or {})
        self.other_samples: dict[str, list[ProcSample]] = {role: [] for role in self.others}
        self.machine_samples: list[tuple[float, float]] = []
        self.lines: list[LogLine] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._sample, name="host-sampler", daemon=True),
            threading.Thread(target=self._read_log, name="host-log", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    # --- threads ----------------------------------------------------------------------------

    def _sample(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            try:
                sample = read_sample(self.pid, now)
            except (OSError, ValueError, KeyError):
                return  # the process is gone
            others = {}
            for role, pid in self.others.items():
                with suppress(OSError, ValueError, KeyError):
                    others[role] = read_sample(pid, now)
            busy = read_machine_busy()
            with self._lock:
                self.samples.append(sample)
                for role, other in others.items():
                    self.other_samples[role].append(other)
                self.machine_samples.append((now, busy))
            self._stop.wait(SAMPLE_SECONDS)

    def _read_log(self) -> None:
        assert self.process.stderr is not None
        for raw in self.process.stderr:
            line = LogLine(time.monotonic(), raw.rstrip("\n"))
            self._log_file.write(raw)
            with self._lock:
                self.lines.append(line)

    # --- reading ----------------------------------------------------------------------------

    def sample_now(self) -> ProcSample:
        """A fresh reading (also stored)."""
        sample = read_sample(self.pid, time.monotonic())
        with self._lock:
            self.samples.append(sample)
        return sample

    def cpu_at(self, moment: float, role: str | None = None) -> float:
        """CPU seconds used by ``moment`` (monotonic), interpolated between samples: the
        host's, or another sampled process's (``role``), or ``"machine"``: every core's busy
        time, whoever used it."""
        with self._lock:
            if role == "machine":
                points = sorted(self.machine_samples)
            else:
                chosen = self.samples if role is None else self.other_samples[role]
                points = sorted((s.at, s.cpu_seconds) for s in chosen)
        return interpolate(points, moment)

    def peak_rss_kb(self) -> int:
        """The highest ``VmHWM`` seen (the kernel's own peak of the resident set)."""
        with self._lock:
            return max((s.peak_rss_kb for s in self.samples), default=0)

    def first_occurrence(self, timeout: float = 120.0) -> datetime:
        """The timer's first occurrence, as the host announced it (UTC)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                for line in self.lines:
                    match = _NEXT_OCCURRENCE.search(line.text)
                    if match:
                        return datetime.fromisoformat(match.group(1))
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(
            "the host did not announce its timer; last log lines:\n" + self.tail_text()
        )

    def lines_matching(self, pattern: str) -> list[LogLine]:
        """Log lines containing ``pattern``."""
        with self._lock:
            return [line for line in self.lines if pattern in line.text]

    def tail_text(self, count: int = 20) -> str:
        """The last log lines, for error messages."""
        with self._lock:
            return "\n".join(line.text for line in self.lines[-count:])

    def alive(self) -> bool:
        """Whether the host is still running."""
        return self.process.poll() is None

    # --- profiling --------------------------------------------------------------------------

    def start_profiler(self, path: Path) -> subprocess.Popen[bytes]:
        """Sample the host's Python stacks with py-spy (every thread, idle ones left out) into
        ``path`` as collapsed stacks, until :meth:`stop_profiler`."""
        spy = Path(sys.executable).with_name("py-spy")
        return subprocess.Popen(
            [str(spy), "record", "--pid", str(self.pid), "--rate", "200", "--format", "raw",
             "--output", str(path), "--threads", "--gil", "--nonblocking"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip

    @staticmethod
    def stop_profiler(profiler: subprocess.Popen[bytes]) -> None:
        """Stop py-spy; it writes its file on SIGINT."""
        profiler.send_signal(signal.SIGINT)
        try:
            profiler.wait(30)
        except subprocess.TimeoutExpired:
            profiler.kill()
            profiler.wait(5)

    # --- stopping ---------------------------------------------------------------------------

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM (the host lets running invocations finish), then wait; returns the status."""
        stop_group(self.process, timeout)
        self._stop.set()
        for thread in self._threads:
            thread.join(5)
        self._log_file.close()
        return self.process.returncode
