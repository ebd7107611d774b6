"""Test doubles for the Marketo client: a scripted Marketo on httpx.MockTransport, a virtual
clock for concurrent governor tests, and client construction helpers."""

from __future__ import annotations

import asyncio
import heapq
import json
import random
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from shared.clock import Clock, ManualClock
from shared.marketo import Governor, Limits, MarketoClient
from shared.settings import MarketoSettings, load

BASE_URL = "https://123-abc-456.mktorest.com"
CLIENT_ID = "client-id-7f3a"
CLIENT_SECRET = "s3cret-v4lue-9b1c"

Responder = Callable[[httpx.Request], httpx.Response]


def settings(**overrides: str) -> MarketoSettings:
    """Marketo settings for tests; overrides by environment-variable name."""
    environ = {
        "MARKETO_BASE_URL": BASE_URL,
        "MARKETO_CLIENT_ID": CLIENT_ID,
        "MARKETO_CLIENT_SECRET": CLIENT_SECRET,
        **overrides,
    }
    return load(MarketoSettings, environ)


def ok(result: Any = None, **extra: Any) -> httpx.Response:
    """A Marketo success answer."""
    body: dict[str, Any] = {"requestId": "r#1", "success": True, **extra}
    if result is not None:
        body["result"] = result
    return httpx.Response(200, json=body)


def fail(code: str, message: str = "refused") -> httpx.Response:
    """A Marketo response-level error (HTTP 200, success false)."""
    return httpx.Response(
        200,
        json={"requestId": "r#2", "success": False, "errors": [{"code": code, "message": message}]},
    )


class FakeMarketo:
    """Answers the identity endpoint itself and REST paths from scripted responses.

    ``on(method, path, *answers)`` queues answers for a route; the last one repeats. An answer
    is an ``httpx.Response`` or a function of the request. Anything unscripted fails the test.
    """

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], list[httpx.Response | Responder]] = {}
        self.requests: list[httpx.Request] = []
        self.tokens_issued = 0
        self.token_lifetime = 3599
        self.identity_answer: httpx.Response | None = None

    def on(self, method: str, path: str, *answers: httpx.Response | Responder) -> FakeMarketo:
        self.routes.setdefault((method, path), []).extend(answers)
        return self

    @property
    def current_token(self) -> str:
        return f"token-{self.tokens_issued}"

    def rest_requests(self) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.path != "/identity/oauth/token"]

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path == "/identity/oauth/token":
            if self.identity_answer is not None:
                return self.identity_answer
            params = request.url.params
            if params.get("client_id") != CLIENT_ID or params.get("client_secret") != CLIENT_SECRET:
                return httpx.Response(401, json={"error": "invalid_client"})
            self.tokens_issued += 1
            return httpx.Response(
                200,
                json={
                    "access_token": self.current_token,
                    "token_type": "bearer",
                    "expires_in": self.token_lifetime,
                    "scope": "api-user@example.com",
                },
            )
        key = (request.method, request.url.path)
        answers = self.routes.get(key)
        if not answers:
            raise AssertionError(f"unexpected request {request.method} {request.url}")
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        return answer(request) if callable(answer) else answer

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)


def body_of(request: httpx.Request) -> Any:
    """The JSON body of a recorded request."""
    return json.loads(request.content)


def make_client(
    fake: FakeMarketo,
    *,
    clock: Clock | None = None,
    limits: Limits | None = None,
    **setting_overrides: str,
) -> MarketoClient:
    """A client wired to ``fake`` with its own governor (not the process registry)."""
    clock = clock or ManualClock(datetime(2026, 3, 2, 15, 0, tzinfo=UTC))
    governor = Governor(limits or Limits(), clock=clock, rng=random.Random(7))
    return MarketoClient(
        settings(**setting_overrides),
        clock=clock,
        transport=fake.transport(),
        governor=governor,
        rng=random.Random(11),
    )


class SimClock:
    """Virtual time for many concurrent tasks: ``sleep`` really waits, but only on the virtual
    timeline, which jumps to the next wake-up whenever every task is blocked."""

    def __init__(self, start: datetime | None = None) -> None:
        self._start = start or datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
        self._now = 0.0
        self._seq = 0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []

    def now(self) -> datetime:
        return self._start + timedelta(seconds=self._now)

    def monotonic(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._seq += 1
        heapq.heappush(self._sleepers, (self._now + seconds, self._seq, future))
        await future

    async def run(self, coroutines: list[Coroutine[Any, Any, Any]], settle: int = 12) -> list[Any]:
        """Run ``coroutines`` to completion on virtual time; return their results in order."""
        tasks = [asyncio.ensure_future(c) for c in coroutines]
        while True:
            for _ in range(settle):  # let every runnable task reach its next wait
                await asyncio.sleep(0)
            if all(t.done() for t in tasks):
                return [t.result() for t in tasks]
            while self._sleepers and self._sleepers[0][2].done():
                heapq.heappop(self._sleepers)
            if not self._sleepers:
                for t in tasks:
                    t.cancel()
                raise AssertionError("deadlock: every task waits and nobody sleeps")
            wake, _, future = heapq.heappop(self._sleepers)
            self._now = max(self._now, wake)
            future.set_result(None)
