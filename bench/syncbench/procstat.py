"""CPU time and memory of one process, read from ``/proc`` (Linux).

* CPU: fields 14 and 15 of ``/proc/<pid>/stat`` (``utime`` and ``stime``, in clock ticks of
  ``SC_CLK_TCK``, normally 100 per second): user and system time of every thread of that process,
  and of nothing else (children are fields 16 and 17, not counted).
* Memory: ``VmHWM`` (the peak resident set size since the process started) and ``VmRSS`` (the
  resident set now) from ``/proc/<pid>/status``, in kB.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ProcSample:
    """One reading of a process."""

    at: float
    """``time.monotonic()`` of the reading."""
    cpu_seconds: float
    """User + system CPU time of the process so far."""
    rss_kb: int
    peak_rss_kb: int


def parse_cpu_seconds(stat_text: str, ticks_per_second: int = CLOCK_TICKS) -> float:
    """``utime + stime`` from the text of ``/proc/<pid>/stat``, in seconds.

    The second field (the command name) is in parentheses and may contain spaces or
    parentheses itself, so the fields are counted from the last ``)``.
    """
    after_name = stat_text[stat_text.rindex(")") + 2 :].split()
    # after_name[0] is field 3 (state); utime is field 14, stime field 15.
    utime, stime = int(after_name[11]), int(after_name[12])
    return (utime + stime) / ticks_per_second


def parse_memory_kb(status_text: str) -> tuple[int, int]:
    """``(VmRSS, VmHWM)`` in kB from the text of ``/proc/<pid>/status``."""
    values: dict[str, int] = {}
    for line in status_text.splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(rest.split()[0])
    return values["VmRSS"], values["VmHWM"]


def read_sample(pid: int, at: float) -> ProcSample:
    """Read ``pid`` now.

    Raises:
        OSError: the process is gone.
    """
    base = Path("/proc") / str(pid)
    cpu = parse_cpu_seconds(base.joinpath("stat").read_text())
    rss, peak = parse_memory_kb(base.joinpath("status").read_text())
    return ProcSample(at, cpu, rss, peak)


def machine_busy_seconds(stat_text: str, ticks_per_second: int = CLOCK_TICKS) -> float:
    """CPU time every core spent busy (not idle, not waiting for I/O) since boot, from the
    first line of ``/proc/stat``: what all processes, ours and others', used."""
    fields = [int(x) for x in stat_text.splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / ticks_per_second


def read_machine_busy() -> float:
    """:func:`machine_busy_seconds` now."""
    return machine_busy_seconds(Path("/proc/stat").read_text())


def children_by_role(parent: int, roles: dict[str, str]) -> dict[str, int]:
    """Direct children of ``parent`` whose command line contains one of ``roles``' values,
    as ``{role: pid}`` (the services the bench started: Azurite, both emulators)."""
    found: dict[str, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = entry.joinpath("stat").read_text()
            ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
            if ppid != parent:
                continue
            command = entry.joinpath("cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError):
            continue
        for role, marker in roles.items():
            if marker in command:
                found[role] = int(entry.name)
    return found
