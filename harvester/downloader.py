"""Scrapy's downloader with its per-source concurrency enforced: Scrapy 2.19 starts every queued request at once.

Its `_process_queue` checks the slot's free transfer places in a loop but marks a request as transferring only when the
scheduled download task first runs, after the loop: with no delay, a slot of concurrency 2 sent all its queued requests
together (eight at once to a fixture site in tests/test_harvest_polite.py). Marking the request before scheduling
keeps the cap; `_download` adds it again (a set) and removes it when done, as before.

It also holds a host back for two requests of the host itself, which Scrapy has no per-slot setting for: the
`Crawl-delay` of its robots.txt (a floor under the source's delay and AutoThrottle's), and the `Retry-After` of a
429/503 (nothing at all is sent to the host until then, not only the refused URL; a wait too long for one run fails
the host's requests at once instead).

And the cap and the delay hold per host across sources: each source has its own crawler and downloader, so two sources
on one site (a WordPress API and its feed, one source per language) each sent their two requests at once and their
own delay, and the site saw twice the rate its sources.yaml entries allow. Every downloader of the process shares one
record per host (host:port): requests in flight, when the last one left, and the politest delay of its sources.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from time import monotonic

from scrapy import Request
from scrapy.core.downloader import Downloader, Slot
from scrapy.crawler import Crawler
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response
from scrapy.utils.asyncio import call_later
from scrapy.utils.defer import _schedule_coro
from scrapy.utils.httpobj import urlparse_cached
from twisted.python.failure import Failure


@dataclass
class _Host:
    """What every downloader of this process knows of one host."""

    transferring: int = 0
    lastseen: float = 0.0
    delays: dict[int, float] = field(default_factory=dict)  # id(downloader) -> its slot's current delay
    waiting: dict[int, tuple[SlotDownloader, Slot]] = field(default_factory=dict)  # slots to wake when one ends


_HOSTS: dict[str, _Host] = {}  # host:port -> its record, for the whole harvest process (one reactor thread)


def _host_of(request: Request) -> _Host:
    return _HOSTS.setdefault(urlparse_cached(request).netloc, _Host())


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
            host = _host_of(slot.queue[0][0])
            host.delays[id(self)] = delay
            if host.transferring >= slot.concurrency:
                host.waiting[id(slot)] = (self, slot)  # another source's requests fill the host: woken when one ends
                break
            wait = max(host.delays.values()) - now + host.lastseen if host.lastseen else 0.0
            if wait > 0:  # another source sent a request to the host less than the politest delay ago
                slot.latercall = call_later(wait, self._latercall, slot)
                break
            slot.lastseen = host.lastseen = now
            host.transferring += 1
            request, queue_dfd = slot.queue.popleft()
            slot.transferring.add(request)  # counted now, not when the task starts
            _schedule_coro(self._wait_for_download(slot, request, queue_dfd))
            if delay:
                # one request per delay: the next waits for its own turn
                self._process_queue(slot)
                break

    async def _download(self, slot: Slot, request: Request) -> Response:
        try:
            return await super()._download(slot, request)
        finally:
            host = _host_of(request)
            host.transferring -= 1
            waiting, host.waiting = host.waiting, {}
            for downloader, other in waiting.values():
                downloader._process_queue(other)
