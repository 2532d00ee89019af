"""Which URL to fetch next: one queue per host, at most ``per_host`` requests at a time to a
host and at least ``delay`` seconds between two request starts, and between the end of one
request and the next start. A host not heard from yet gets one request at a time (that
first request also reads its robots.txt).

Workers call :meth:`HostScheduler.take` (blocks until some host may be asked again) and
:meth:`HostScheduler.done` or :meth:`HostScheduler.retry` when their request ends. Hosts that
are ready wait in a heap ordered by the time they may next be asked, so the choice is
O(log hosts) whatever the number of queued URLs.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Task:
    url: str  # the URL as listed: its outcome is recorded under it
    host: str  # where the request goes: the listed URL's host, or the hop's
    attempt: int = 0
    target: str = ""  # a redirect hop to ask for instead of ``url``
    hops: int = 0
    status: int | None = None  # the redirect's status that led here


@dataclass
class _Host:
    delay: float
    queue: deque = field(default_factory=deque)
    active: int = 0
    next_time: float = 0.0
    version: int = 0
    answered: bool = False  # a request to it has ended


class HostScheduler:
    def __init__(self, per_host: int, delay: float, clock: Callable[[], float] = time.monotonic):
        self.per_host = per_host
        self.delay = delay
        self.clock = clock
        self._hosts: dict[str, _Host] = {}
        self._ready: list[tuple[float, int, int, str]] = []  # (next_time, order, version, host)
        self._order = itertools.count()
        self._changed = threading.Condition()
        self._queued = 0
        self._active = 0
        self._input_done = False
        self._closed = False

    # --- producers --------------------------------------------------------------------------
    def add(self, task: Task) -> None:
        with self._changed:
            host = self._hosts.setdefault(task.host, _Host(self.delay))
            host.queue.append(task)
            self._queued += 1
            self._push(task.host, host)
            self._changed.notify_all()

    def input_done(self) -> None:
        """No more :meth:`add`: :meth:`take` returns None once every task has ended."""
        with self._changed:
            self._input_done = True
            self._changed.notify_all()

    def close(self) -> None:
        """Stop now: every waiting and later :meth:`take` returns None."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def wait_below(self, queued: int) -> bool:
        """Block while at least ``queued`` tasks wait (the reader's back-pressure); False once closed."""
        with self._changed:
            while self._queued >= queued and not self._closed:
                self._changed.wait()
            return not self._closed

    # --- workers ----------------------------------------------------------------------------
    def take(self) -> Task | None:
        """The next task a worker may start; blocks until there is one, None when all is done."""
        with self._changed:
            while True:
                if self._closed or (self._input_done and self._queued == 0 and self._active == 0):
                    return None
                task, wait = self._next_ready()
                if task is not None:
                    return task
                self._changed.wait(wait)

    def poll(self) -> Task | None:
        """The next task if one may start now, else None (never blocks)."""
        with self._changed:
            return None if self._closed else self._next_ready()[0]

    def done(self, task: Task) -> None:
        with self._changed:
            self._release(task)
            self._changed.notify_all()

    def retry(self, task: Task, after: float) -> None:
        """Put ``task`` back first in its host's queue; that host waits ``after`` seconds."""
        with self._changed:
            host = self._hosts[task.host]
            host.next_time = max(host.next_time, self.clock() + after)
            task.attempt += 1
            host.queue.appendleft(task)
            self._queued += 1
            self._release(task)
            self._changed.notify_all()

    def slow_down(self, name: str, delay: float) -> None:
        """A longer delay for one host (its robots.txt ``Crawl-delay``)."""
        with self._changed:
            host = self._hosts.get(name)
            if host is not None and delay > host.delay:
                host.next_time += delay - host.delay
                host.delay = delay
                self._push(name, host)

    @property
    def queued(self) -> int:
        return self._queued

    @property
    def hosts(self) -> int:
        return len(self._hosts)

    # --- internals --------------------------------------------------------------------------
    def _next_ready(self) -> tuple[Task | None, float | None]:
        """Start the task of the host that may be asked soonest, or say how long to wait."""
        while self._ready:
            next_time, _, version, name = self._ready[0]
            host = self._hosts.get(name)
            if host is None or version != host.version:
                heapq.heappop(self._ready)
                continue
            now = self.clock()
            if next_time > now:
                return None, next_time - now
            heapq.heappop(self._ready)
            task = host.queue.popleft()
            host.active += 1
            host.next_time = now + host.delay
            self._queued -= 1
            self._active += 1
            self._push(name, host)
            self._changed.notify_all()
            return task, None
        return None, None

    def _release(self, task: Task) -> None:
        host = self._hosts[task.host]
        host.active -= 1
        host.answered = True
        host.next_time = max(host.next_time, self.clock() + host.delay)
        self._active -= 1
        self._push(task.host, host)
        if not host.queue and not host.active:
            if host.next_time <= self.clock():
                del self._hosts[task.host]  # forget finished hosts; their delay has passed

    def _push(self, name: str, host: _Host) -> None:
        host.version += 1
        if host.queue and host.active < (self.per_host if host.answered else 1):
            heapq.heappush(self._ready, (host.next_time, next(self._order), host.version, name))
