"""Small thread-safe LRUs for work that a repeated query (next page, facet click, export) reuses: per-query values
inside a search, and whole answers at the HTTP layer."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Collection, Hashable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class Lru:
    """At most `size` values by key, least recently used dropped first; compute runs outside the lock."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._values: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        """The value under `key`, computing and keeping it on a miss (two racing misses both compute: harmless)."""
        with self._lock:
            if key in self._values:
                self._values.move_to_end(key)
                return self._values[key]
        value = compute()
        with self._lock:
            self._values[key] = value
            while len(self._values) > self.size:
                self._values.popitem(last=False)
        return value

    def __len__(self) -> int:
        return len(self._values)


class ResponseCache:
    """ASGI middleware replaying the recent 200 answers of GET requests on `paths` while their `stamp` is unchanged.

    A popular query (its next pages, a facet click, the same search from many readers) then costs a dict look-up
    instead of a whole search. `stamp(scope)` names everything an answer depends on besides the request line (the
    store's data version, the index files); it is read before the answer is computed and again after, and the answer
    is kept only when both agree, so an answer is never replayed after a write it did not see. A None stamp turns
    caching off for that request. Headers added by outer middlewares (CORS) are not stored: they are added per request.
    """

    def __init__(
        self, app: ASGIApp, stamp: Callable[[Scope], Hashable | None], paths: Collection[str],
        entries: int = 2048, entry_bytes: int = 256_000, total_bytes: int = 64_000_000,
    ) -> None:
        self.app = app
        self.stamp = stamp
        self.paths = frozenset(paths)
        self.entries, self.entry_bytes, self.total_bytes = entries, entry_bytes, total_bytes
        self._answers: OrderedDict[Hashable, tuple[int, list[tuple[bytes, bytes]], bytes]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        stamp = self.stamp(scope)
        if stamp is None:
            await self.app(scope, receive, send)
            return
        key = (scope["path"], scope["query_string"], stamp)
        with self._lock:
            answer = self._answers.get(key)
            if answer is not None:
                self._answers.move_to_end(key)
                self.hits += 1
            else:
                self.misses += 1
        if answer is not None:
            status, headers, body = answer
            await send({"type": "http.response.start", "status": status, "headers": list(headers)})
            await send({"type": "http.response.body", "body": body})
            return
        start: dict[str, Any] = {}
        parts: list[bytes] = []

        async def keep(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                parts.append(message.get("body", b""))
                if not message.get("more_body", False) and start.get("status") == 200:
                    self._keep(key, stamp, scope, start, b"".join(parts))
            await send(message)

        await self.app(scope, receive, keep)

    def _keep(self, key: Hashable, stamp: Hashable, scope: Scope, start: dict[str, Any], body: bytes) -> None:
        if len(body) > self.entry_bytes or self.stamp(scope) != stamp:  # too big, or the data changed meanwhile
            return
        with self._lock:
            old = self._answers.pop(key, None)
            if old is not None:
                self._bytes -= len(old[2])
            self._answers[key] = (start["status"], [tuple(h) for h in start.get("headers", [])], body)
            self._bytes += len(body)
            while len(self._answers) > self.entries or self._bytes > self.total_bytes:
                self._bytes -= len(self._answers.popitem(last=False)[1][2])
