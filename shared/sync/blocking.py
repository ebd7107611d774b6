"""Calling the (synchronous) storage SDK from async code without stalling the event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


async def blocking(fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Run ``fn`` in a worker thread (the state store and queue clients block on I/O)."""
    return await asyncio.to_thread(fn, *args, **kwargs)
