"""The server's bounded queue: a few worker threads, and a slot per admitted job.

A request either gets a slot (running, or waiting for a worker) or is refused at once with
`QueueFull`, which the app answers with HTTP 429 and a Retry-After: a burst of requests can
never pile up unbounded work or memory. One client (an address) holds at most `per_client`
slots, so a few clients that open streams and never read them cannot take them all. Nothing
here imports FastAPI.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class QueueFull(Exception):
    """Every slot is taken (or every slot one client may hold): try again after `retry_after`
    seconds."""

    def __init__(self, busy: int, retry_after: int, message: str = "") -> None:
        super().__init__(message or f"the server is busy ({busy} requests generating or waiting)")
        self.busy, self.retry_after = busy, retry_after


class JobQueue:
    """At most `max_queue` jobs admitted at once, run by `workers` threads; at most `per_client`
    of them (half the queue by default) for one client."""

    def __init__(self, workers: int = 1, max_queue: int = 8, per_client: int = 0) -> None:
        per_client = per_client or max(1, max_queue // 2)
        if workers < 1 or max_queue < workers or not 1 <= per_client <= max_queue:
            raise ValueError("need workers >= 1, max_queue >= workers, 1 <= per_client <= queue")
        self.workers, self.max_queue, self.per_client = workers, max_queue, per_client
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="lstm-music-generate")
        self._lock = threading.Lock()
        self._busy = 0
        self._held: Counter[str] = Counter()  # slots held by each client
        self._durations: deque[float] = deque(maxlen=20)

    @property
    def busy(self) -> int:
        return self._busy

    def _retry_after(self) -> int:
        """Seconds until a slot is likely free: recent job time times the jobs ahead.

        Called with the lock held (the durations are appended under it)."""
        typical = sum(self._durations) / len(self._durations) if self._durations else 5.0
        return max(1, min(120, math.ceil(typical * self._busy / self.workers)))

    async def run(self, function: Callable[..., T], *args: Any, client: str = "") -> T:
        """Run `function(*args)` in a worker thread, or raise QueueFull without waiting."""
        return await asyncio.wrap_future(self.submit(function, *args, client=client))

    def submit(
        self, function: Callable[..., T], *args: Any, timed: bool = True, client: str = ""
    ) -> Future[T]:
        """`run` without the wait: the slot is taken now (or QueueFull raised) and given back
        when the work is over, or when the future is cancelled before it starts. `timed=False`
        leaves the job out of Retry-After's average (a stream goes at its client's pace);
        `client` (its address) is held to `per_client` slots."""
        with self._lock:
            if self._busy >= self.max_queue:
                raise QueueFull(self._busy, self._retry_after())
            if self._held[client] >= self.per_client:
                raise QueueFull(self._busy, self._retry_after(), self._client_full(client))
            self._busy += 1
            self._held[client] += 1

        def work() -> T:
            started = time.perf_counter()
            try:
                return function(*args)
            finally:
                if timed:
                    with self._lock:
                        self._durations.append(time.perf_counter() - started)

        def release(_) -> None:  # when the work is really over, even if the client left
            with self._lock:
                self._busy -= 1
                self._held[client] -= 1
                if self._held[client] <= 0:
                    del self._held[client]

        try:
            future = self._executor.submit(work)
        except RuntimeError:  # shutting down
            release(None)
            raise QueueFull(self.max_queue, 5) from None
        future.add_done_callback(release)
        return future

    def _client_full(self, client: str) -> str:
        who = f"this client ({client})" if client else "this client"
        return (f"{who} already holds {self._held[client]} of the server's {self.max_queue} "
                "generation slots, the most one client may: finish or close one of its "
                "requests (a stream it does not read) first")  # fmt: skip

    def shutdown(self) -> None:
        """Drop waiting jobs, let running ones finish (they are short)."""
        self._executor.shutdown(wait=True, cancel_futures=True)
