"""Timestamped, plain-text lines on stdout: readable in a terminal and in a CI log alike."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Narrator:
    """Prints lines prefixed with the seconds since the demo started."""

    def __init__(self, stream: TextIO | None = None, start: float | None = None) -> None:
        self.stream = stream or sys.stdout
        self.start = time.monotonic() if start is None else start

    def elapsed(self) -> float:
        """Seconds since the start."""
        return time.monotonic() - self.start

    def say(self, text: str = "") -> None:
        """One line (or several) with the elapsed time in front of the first."""
        first, *rest = text.split("\n")
        prefix = f"[{self.elapsed():6.1f}s] "
        lines = [prefix + first, *(" " * len(prefix) + line for line in rest)]
        self.stream.write("\n".join(lines) + "\n")
        self.stream.flush()

    def block(self, text: str) -> None:
        """Lines printed as they are (a table or a report)."""
        self.stream.write(text.rstrip("\n") + "\n")
        self.stream.flush()

    def stage(self, title: str) -> None:
        """A stage heading."""
        self.stream.write(f"\n== {title} ==\n")
        self.stream.flush()


class DemoFailure(Exception):
    """A stage did not reach its goal; the message says which and why (never a secret)."""
