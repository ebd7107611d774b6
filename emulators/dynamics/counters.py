"""Request counters for tests that assert how many calls a client made."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any


class RequestCounters:
    """Counts by ``METHOD path``, by ``METHOD resource`` (entity set or function), by status,
    and ``$batch`` parts by ``METHOD resource``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.clear()

    def clear(self) -> None:
        """Start counting from zero."""
        with self._lock:
            self.by_path: Counter[str] = Counter()
            self.by_resource: Counter[str] = Counter()
            self.by_status: Counter[str] = Counter()
            self.batch_parts: Counter[str] = Counter()
            self.token_requests = 0
            self.total = 0

    def request(self, method: str, path: str, resource: str) -> None:
        """Count one Web API request (before auth, limits and faults: every attempt counts)."""
        with self._lock:
            self.total += 1
            self.by_path[f"{method} {path}"] += 1
            self.by_resource[f"{method} {resource}"] += 1

    def status(self, status: int) -> None:
        """Count one response status."""
        with self._lock:
            self.by_status[str(status)] += 1

    def batch_part(self, method: str, resource: str) -> None:
        """Count one request inside a ``$batch``."""
        with self._lock:
            self.batch_parts[f"{method} {resource}"] += 1

    def token(self) -> None:
        """Count one token request."""
        with self._lock:
            self.token_requests += 1

    def snapshot(self) -> dict[str, Any]:
        """All counters as JSON."""
        with self._lock:
            return {
                "total": self.total,
                "by_path": dict(self.by_path),
                "by_resource": dict(self.by_resource),
                "by_status": dict(self.by_status),
                "batch_parts": dict(self.batch_parts),
                "token_requests": self.token_requests,
            }


def resource_of(path: str) -> str:
    """The entity set or function a Web API path addresses (``accounts(…)`` → ``accounts``)."""
    head = path.strip("/").split("/", 1)[0]
    return head.split("(", 1)[0] or "/"
