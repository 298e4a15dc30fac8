"""Scrapy's downloader with its per-source concurrency enforced: Scrapy 2.19 starts every queued request at once.

Its `_process_queue` checks the slot's free transfer places in a loop but marks a request as transferring only when the
scheduled download task first runs, after the loop: with no delay, a slot of concurrency 2 sent all its queued requests
together (eight at once to a fixture site in tests/test_harvest_polite.py). Marking the request before scheduling
keeps the cap; `_download` adds it again (a set) and removes it when done, as before.

It also holds a host back for two requests of the host itself, which Scrapy has no per-slot setting for: the
`Crawl-delay` of its robots.txt (a floor under the source's delay and AutoThrottle's), and the `Retry-After` of a
429/503 (nothing at all is sent to the host until then, not only the refused URL; a wait too long for one run fails
the host's requests at once instead).
"""

from __future__ import annotations

from time import monotonic

from scrapy import Request
from scrapy.core.downloader import Downloader, Slot
from scrapy.crawler import Crawler
from scrapy.exceptions import IgnoreRequest
from scrapy.utils.asyncio import call_later
from scrapy.utils.defer import _schedule_coro
from twisted.python.failure import Failure


class SlotDownloader(Downloader):
    """Downloader whose slots never transfer more requests at once than their concurrency, nor sooner than the host
    asked (robots.txt Crawl-delay, Retry-After)."""

    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        # By slot key (Scrapy drops idle slots after a minute, so nothing is kept on the slot itself).
        self.floors: dict[str, float] = {}  # least seconds between two requests
        self.pauses: dict[str, float] = {}  # monotonic time before which nothing is sent
        self.refusals: dict[str, tuple[float, str]] = {}  # (monotonic time, why): until then requests fail at once

    def set_floor(self, request: Request, seconds: float) -> None:
        """Never send requests to this request's host closer together than `seconds`."""
        self.floors[self.get_slot_key(request)] = seconds

    def pause(self, request: Request, seconds: float) -> None:
        """Send nothing to this request's host for `seconds` (requests already on the wire finish)."""
        key = self.get_slot_key(request)
        self.pauses[key] = max(self.pauses.get(key, 0.0), monotonic() + seconds)

    def refuse(self, request: Request, seconds: float, why: str) -> None:
        """Fail every request to this request's host for `seconds`, queued ones included, with IgnoreRequest(why)."""
        key, slot = self._get_slot(request)
        self.refusals[key] = (monotonic() + seconds, why)
        self._process_queue(slot)

    def _held(self, slot: Slot) -> tuple[float, float, str | None]:
        """(floor, paused-until, why refused or None) of a slot; at no cost while no host asked for anything."""
        if not self.floors and not self.pauses and not self.refusals:
            return 0.0, 0.0, None
        key = next((k for k, s in self.slots.items() if s is slot), "")
        until, why = self.refusals.get(key, (0.0, ""))
        return self.floors.get(key, 0.0), self.pauses.get(key, 0.0), why if monotonic() < until else None

    def _process_queue(self, slot: Slot) -> None:
        floor, paused_until, refused = self._held(slot)
        while refused and slot.queue:
            _, queue_dfd = slot.queue.popleft()
            queue_dfd.errback(Failure(IgnoreRequest(refused)))
        if slot.latercall:
            return  # a delayed call will process the queue
        now = monotonic()
        delay = max(slot.download_delay(), floor)
        penalty = max(delay - now + slot.lastseen if delay else 0.0, paused_until - now)
        if penalty > 0:
            slot.latercall = call_later(penalty, self._latercall, slot)
            return
        while slot.queue and slot.free_transfer_slots() > 0:
            slot.lastseen = now
            request, queue_dfd = slot.queue.popleft()
            slot.transferring.add(request)  # counted now, not when the task starts
            _schedule_coro(self._wait_for_download(slot, request, queue_dfd))
            if delay:
                # one request per delay: the next waits for its own turn
                self._process_queue(slot)
                break
