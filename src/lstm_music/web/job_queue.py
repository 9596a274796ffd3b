"""The server's bounded queue: a few worker threads, and a slot per admitted job.

A request either gets a slot (running, or waiting for a worker) or is refused at once with
`QueueFull`, which the app answers with HTTP 429 and a Retry-After: a burst of requests can
never pile up unbounded work or memory. Nothing here imports FastAPI.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class QueueFull(Exception):
    """Every slot is taken: try again after `retry_after` seconds."""

    def __init__(self, busy: int, retry_after: int) -> None:
        super().__init__(f"the server is busy ({busy} requests generating or waiting)")
        self.busy, self.retry_after = busy, retry_after


class JobQueue:
    """At most `max_queue` jobs admitted at once, run by `workers` threads."""

    def __init__(self, workers: int = 1, max_queue: int = 8) -> None:
        if workers < 1 or max_queue < workers:
            raise ValueError("need workers >= 1 and max_queue >= workers")
        self.workers, self.max_queue = workers, max_queue
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="lstm-music-generate")
        self._lock = threading.Lock()
        self._busy = 0
        self._durations: deque[float] = deque(maxlen=20)

    @property
    def busy(self) -> int:
        return self._busy

    def _retry_after(self) -> int:
        """Seconds until a slot is likely free: recent job time times the jobs ahead.

        Called with the lock held (the durations are appended under it)."""
        typical = sum(self._durations) / len(self._durations) if self._durations else 5.0
        return max(1, min(120, math.ceil(typical * self._busy / self.workers)))

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        """Run `function(*args)` in a worker thread, or raise QueueFull without waiting."""
        return await asyncio.wrap_future(self.submit(function, *args))

    def submit(self, function: Callable[..., T], *args: Any, timed: bool = True) -> Future[T]:
        """`run` without the wait: the slot is taken now (or QueueFull raised) and given back
        when the work is over, or when the future is cancelled before it starts. `timed=False`
        leaves the job out of Retry-After's average (a stream goes at its client's pace)."""
        with self._lock:
            if self._busy >= self.max_queue:
                raise QueueFull(self._busy, self._retry_after())
            self._busy += 1

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

        try:
            future = self._executor.submit(work)
        except RuntimeError:  # shutting down
            release(None)
            raise QueueFull(self.max_queue, 5) from None
        future.add_done_callback(release)
        return future

    def shutdown(self) -> None:
        """Drop waiting jobs, let running ones finish (they are short)."""
        self._executor.shutdown(wait=True, cancel_futures=True)
