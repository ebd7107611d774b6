"""A check's outcome and the checklist of outcomes (pure data; no I/O)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class CheckStatus(StrEnum):
    """How a check came out."""

    PASSED = "passed"
    WARNING = "warning"
    """Not a fault, but the operator should know (the sync still runs)."""
    FAILED = "failed"
    SKIPPED = "skipped"
    """Not checked, because a check it depends on failed (that one is the ✘ to fix)."""


SYMBOLS = {
    CheckStatus.PASSED: "✔",
    CheckStatus.WARNING: "⚠",
    CheckStatus.FAILED: "✘",
    CheckStatus.SKIPPED: "·",
}
"""What each status looks like on a checklist line."""


@dataclass(frozen=True)
class CheckResult:
    """One line of the checklist.

    ``blocks_start``: a failure the app refuses to start with (a mapping that cannot work);
    other failures (an environment copy, a spent budget) the running sync already handles by
    itself, so they are reported but do not keep the app from starting.
    """

    check: str
    """A stable name, e.g. ``dynamics.change_tracking``."""
    subject: str
    """What was checked, in the operator's words: ``table contact``."""
    status: CheckStatus
    detail: str
    """What was found (never a secret)."""
    fix: str = ""
    """What to do, for a warning or a failure."""
    blocks_start: bool = True

    def line(self) -> str:
        """``✔ Dynamics table contact: change tracking on`` plus the fix on a failure."""
        text = f"{SYMBOLS[self.status]} {self.subject}: {self.detail}"
        if self.fix and self.status in (CheckStatus.FAILED, CheckStatus.WARNING):
            text += f"\n    → {self.fix}"
        return text

    def to_json(self) -> dict[str, Any]:
        """The line as data."""
        return {
            "check": self.check,
            "subject": self.subject,
            "status": self.status.value,
            "detail": self.detail,
            "fix": self.fix or None,
            "blocks_start": self.blocks_start,
        }


def passed(check: str, subject: str, detail: str) -> CheckResult:
    """A ✔ line."""
    return CheckResult(check, subject, CheckStatus.PASSED, detail)


def failed(
    check: str, subject: str, detail: str, fix: str, *, blocks_start: bool = True
) -> CheckResult:
    """A ✘ line with what to do."""
    return CheckResult(check, subject, CheckStatus.FAILED, detail, fix, blocks_start)


def warned(check: str, subject: str, detail: str, fix: str = "") -> CheckResult:
    """A ⚠ line."""
    return CheckResult(check, subject, CheckStatus.WARNING, detail, fix, blocks_start=False)


def skipped(check: str, subject: str, because: str) -> CheckResult:
    """A line for a check that could not run."""
    return CheckResult(check, subject, CheckStatus.SKIPPED, f"not checked: {because}")


@dataclass
class Checklist:
    """Every outcome, in the order the checks ran."""

    results: list[CheckResult] = field(default_factory=list)
    unfiltered: list[str] = field(default_factory=list)
    """Entities whose table has no sync-filter column (every record of them syncs)."""

    def add(self, result: CheckResult) -> CheckResult:
        """Append one outcome."""
        self.results.append(result)
        return result

    def extend(self, results: Iterable[CheckResult]) -> None:
        """Append several outcomes."""
        self.results.extend(results)

    @property
    def failures(self) -> list[CheckResult]:
        """The ✘ lines."""
        return [r for r in self.results if r.status is CheckStatus.FAILED]

    @property
    def ok(self) -> bool:
        """Nothing is ✘ (the command's exit 0)."""
        return not self.failures

    def render(self) -> str:
        """The checklist as text, one line per check, and a summary."""
        counts = {s: sum(r.status is s for r in self.results) for s in CheckStatus}
        summary = (
            f"{counts[CheckStatus.PASSED]} passed, {counts[CheckStatus.WARNING]} warnings, "
            f"{counts[CheckStatus.FAILED]} failed"
        )
        if counts[CheckStatus.SKIPPED]:
            summary += f", {counts[CheckStatus.SKIPPED]} not checked"
        return "\n".join([*(r.line() for r in _grouped(self.results)), "", summary])

    def to_json(self) -> dict[str, Any]:
        """The checklist as data."""
        return {"ok": self.ok, "checks": [r.to_json() for r in self.results]}


def _grouped(results: list[CheckResult]) -> list[CheckResult]:
    """Consecutive ✔ lines about one subject as one line (``a; b; c``), so that a healthy table
    takes one line; every other line stays as it is."""
    grouped: list[CheckResult] = []
    for result in results:
        last = grouped[-1] if grouped else None
        if (
            last is not None
            and result.status is CheckStatus.PASSED
            and last.status is CheckStatus.PASSED
            and last.subject == result.subject
        ):
            grouped[-1] = passed(last.check, last.subject, f"{last.detail}; {result.detail}")
        else:
            grouped.append(result)
    return grouped
