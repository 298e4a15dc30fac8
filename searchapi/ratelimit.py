"""Per-client rate limit: a token bucket per client address, refilled at SSEHUB_RATE_LIMIT requests per minute."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

MAX_CLIENTS = 10_000  # buckets kept; full (idle) buckets are dropped first when there are more


class TokenBuckets:
    """`per_minute` requests a minute per key, in bursts of at most `per_minute`; thread-safe."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0  # tokens per second
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, time of last update)
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """Spend one token: 0.0 when allowed, else the seconds until a token is available."""
        now = self.clock()
        with self._lock:
            tokens, last = self._buckets.get(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                wait = 0.0
            else:
                self._buckets[key] = (tokens, now)
                wait = (1.0 - tokens) / self.rate
            if len(self._buckets) > MAX_CLIENTS:
                self._prune(now)
        return wait

    def _prune(self, now: float) -> None:
        """Forget clients whose bucket has refilled: they start full again anyway."""
        for key, (tokens, last) in list(self._buckets.items()):
            if tokens + (now - last) * self.rate >= self.capacity:
                del self._buckets[key]


class RateLimit:
    """ASGI middleware: 429 with Retry-After (whole seconds) when a client is over its limit on /api/ paths."""

    def __init__(self, app: ASGIApp, per_minute: int, prefix: str = "/api/") -> None:
        self.app = app
        self.buckets = TokenBuckets(per_minute)
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(self.prefix) and scope["method"] != "OPTIONS":
            client = scope.get("client")
            wait = self.buckets.take(client[0] if client else "unknown")
            if wait > 0:
                retry = max(1, math.ceil(wait))
                response = JSONResponse(
                    {"detail": f"too many requests: at most {int(self.buckets.capacity)} a minute; retry in {retry} s"},
                    status_code=429,
                    headers={"Retry-After": str(retry)},
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
