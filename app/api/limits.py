"""Per-caller HTTP limits: request body size, request rate, concurrent long-polls.

SUMMARY
    ``BodyLimit`` is an ASGI middleware: a request whose ``Content-Length``
    exceeds ``api_max_body_size`` is answered ``413 payload_too_large`` before
    anything is read; a body without a length (chunked) is counted while it
    streams in and the read that crosses the limit fails with the same 413, so
    an unbounded body is never buffered.

    ``ApiLimits`` holds, in memory and per process, a token bucket per caller
    (``api_rate_limit`` requests per second, ``api_rate_burst`` at once; more
    get 429 with ``Retry-After``) and a count of each caller's open long-polls
    (``api_max_waits``; one more gets 429). A caller is its key's tenant, or its
    client IP in open mode (``app.api.deps`` decides). With several processes
    each one counts on its own, so the effective limit is per process.

CONFIGURATION PARAMETERS
    api_max_body_size, api_rate_limit, api_rate_burst, api_max_waits.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from fastapi import HTTPException
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.config import Settings
from app.errors import TooManyRequests


def _too_large(limit: int) -> str:
    return f"the request body is larger than {limit} bytes (MAILHARNESS_API_MAX_BODY_SIZE)"


class BodyLimit:
    """413 for request bodies over ``max_size``, decided while they stream in."""

    def __init__(self, app: ASGIApp, max_size: int) -> None:
        self.app = app
        self.max_size = max_size

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    break
                if declared > self.max_size:
                    await self._refuse(scope, receive, send)
                    return
                break
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_size:
                    # FastAPI lets its own HTTPException through body parsing; the
                    # error handlers turn it into the contract's 413 body.
                    raise HTTPException(413, _too_large(self.max_size))
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except HTTPException as exc:
            if exc.status_code != 413 or started:
                raise
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = JSONResponse(
            {"error": "payload_too_large", "detail": _too_large(self.max_size)},
            status_code=413,
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)


class TokenBuckets:
    """A token bucket per caller: ``rate`` tokens a second up to ``burst``.

    At most ``max_callers`` buckets are kept; the least recently used one is
    dropped past that (a dropped caller starts again with a full bucket)."""

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        max_callers: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.max_callers = max_callers
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, caller: str) -> float:
        """Take a token: 0.0 when granted, else the seconds until one is available."""
        now = self._clock()
        tokens, last = self._buckets.pop(caller, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / self.rate
        self._buckets[caller] = (tokens, now)
        while len(self._buckets) > self.max_callers:
            self._buckets.popitem(last=False)
        return wait


class WaitSlots:
    """Open long-polls per caller, at most ``limit`` each (0: unlimited)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: dict[str, int] = {}

    def open(self, caller: str) -> int:
        return self._open.get(caller, 0)

    @contextlib.contextmanager
    def slot(self, caller: str) -> Iterator[None]:
        if self.limit <= 0:
            yield
            return
        count = self._open.get(caller, 0)
        if count >= self.limit:
            raise TooManyRequests(
                f"at most {self.limit} waits may be open at once per key "
                "(MAILHARNESS_API_MAX_WAITS)",
                retry_after=1,
            )
        self._open[caller] = count + 1
        try:
            yield
        finally:
            left = self._open[caller] - 1
            if left:
                self._open[caller] = left
            else:
                del self._open[caller]


@dataclass
class ApiLimits:
    rate: TokenBuckets | None
    waits: WaitSlots

    @classmethod
    def from_settings(cls, settings: Settings) -> ApiLimits:
        per_second, burst = settings.effective_api_rate
        return cls(
            rate=TokenBuckets(per_second, burst) if per_second > 0 else None,
            waits=WaitSlots(settings.api_max_waits),
        )

    def check_rate(self, caller: str) -> None:
        """Raise ``TooManyRequests`` (with the seconds to wait) when ``caller`` is over."""
        if self.rate is None:
            return
        wait = self.rate.take(caller)
        if wait > 0:
            raise TooManyRequests(
                f"more than {self.rate.rate:g} requests per second for this key "
                "(MAILHARNESS_API_RATE_LIMIT)",
                retry_after=math.ceil(wait),
            )
