"""A process pool that survives its tasks: per-task time limit, memory limit, crash isolation.

`multiprocessing.Pool` and `ProcessPoolExecutor` lose the whole pool (or hang) when a worker
segfaults, and cannot time out one task. Here each worker owns a pipe; the parent waits on the
pipes and the process sentinels at once, so a dead or stuck worker is seen, its task is reported
as failed with the reason, and a fresh worker takes its place.

Why not `pebble.ProcessPool` (measured for issue 11; it passes test_hostile_tasks_fail_alone):
all its workers share one result pipe guarded by a lock, so a worker that dies while sending
(here a result whose pickling segfaults; in life the OOM killer mid-write) leaves the lock held:
the pool stalled 120 s, then failed every other task with BrokenProcessPool, where this pool
fails that one task in 0.6 s (test_a_death_while_sending_costs_only_its_task). Its manager
threads also fork replacement workers from a threaded parent, which `_start_method` avoids;
with forkserver instead it was 1.1-1.2x slower than this pool on 1,000 synthetic files.
"""

from __future__ import annotations

import contextlib
import faulthandler
import multiprocessing as mp
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any

from lstm_music.errors import LstmMusicError

# a picklable callable, payload -> result; sent once to each worker, which may cache state in it
Job = Callable[[Any], Any]


@dataclass
class Outcome:
    """What became of one task: `result` when ok, else a one-line `reason`."""

    key: Any
    ok: bool
    result: Any = None
    reason: str = ""


def _limit_memory(megabytes: int) -> None:
    """Cap this process's address space at its current size plus `megabytes` (Linux only)."""
    try:
        import resource

        with open("/proc/self/statm") as statm:
            current = int(statm.read().split()[0]) * resource.getpagesize()
        limit = current + megabytes * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, OSError, ValueError):
        pass  # no /proc or no RLIMIT_AS (macOS, Windows): the time limit still applies


def _worker_main(conn: Connection, job: Job, memory_mb: int) -> None:
    """Worker loop: receive (key, payload), send Outcome; None means stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    faulthandler.disable()  # a crash is reported by the parent in one line, not a stack dump
    if memory_mb > 0:
        _limit_memory(memory_mb)
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        key, payload = task
        try:
            outcome = Outcome(key, True, job(payload))
        except MemoryError:
            outcome = Outcome(key, False, reason=f"over the memory limit ({memory_mb} MB)")
        except Exception as error:  # report any failure of one file, keep serving
            outcome = Outcome(key, False, reason=_describe(error))
        conn.send(outcome)


def _describe(error: BaseException) -> str:
    """A one-line reason; our own errors carry their message, others name their type too."""
    if isinstance(error, LstmMusicError):
        return str(error)
    where = traceback.extract_tb(error.__traceback__)[-1:] if error.__traceback__ else []
    place = f" (in {where[0].name})" if where else ""
    return f"{type(error).__name__}: {error}{place}".replace("\n", " ")


def _signal_reason(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            return f"worker crashed ({signal.Signals(-exitcode).name})"
        except ValueError:
            return f"worker crashed (signal {-exitcode})"
    return f"worker exited unexpectedly (code {exitcode})"


def _start_method() -> str:
    """fork where it is safe: workers then start in milliseconds with the parent's imports.

    Forking a process that runs threads can deadlock the child, so a threaded parent (or a
    platform without fork) gets forkserver or spawn instead.
    """
    others = [
        t
        for t in threading.enumerate()
        if t is not threading.main_thread() and type(t).__name__ != "TMonitor"
    ]  # tqdm's idle monitor takes no locks we use
    if sys.platform.startswith("linux") and not others:
        return "fork"
    return "forkserver" if sys.platform.startswith("linux") else "spawn"


@dataclass
class _Worker:
    process: Any
    conn: Connection
    task: Any = None  # key of the task in progress, or None when idle
    deadline: float = field(default=float("inf"))


class IsolatedPool:
    """`workers` processes running `job(payload)`, each task with a time and memory limit."""

    def __init__(self, job: Job, workers: int = 1, timeout: float = 60.0, memory_mb: int = 0):
        self._context = mp.get_context(_start_method())
        self._args = (job, memory_mb)
        self._size, self._timeout = max(1, workers), timeout
        self._workers: list[_Worker] = []

    def _start(self) -> _Worker:
        parent, child = self._context.Pipe()
        process = self._context.Process(target=_worker_main, args=(child, *self._args), daemon=True)
        process.start()
        child.close()
        return _Worker(process, parent)

    def _replace(self, worker: _Worker) -> None:
        worker.process.kill()
        worker.process.join()
        worker.conn.close()
        self._workers[self._workers.index(worker)] = self._start()

    def imap_unordered(self, tasks: Iterable[tuple[Any, Any]]) -> Iterator[Outcome]:
        """Run (key, payload) tasks; yield an Outcome for each, in completion order."""
        pending = iter(tasks)
        self._workers = [self._start() for _ in range(self._size)]
        try:
            yield from self._run(pending)
        finally:
            self.close()

    def _dispatch(self, pending: Iterator[tuple[Any, Any]]) -> None:
        for worker in self._workers:
            if worker.task is None:
                task = next(pending, None)
                if task is None:
                    return
                worker.task, worker.deadline = task[0], time.monotonic() + self._timeout
                worker.conn.send(task)

    def _run(self, pending: Iterator[tuple[Any, Any]]) -> Iterator[Outcome]:
        while True:
            self._dispatch(pending)
            busy = [w for w in self._workers if w.task is not None]
            if not busy:
                return
            wait_for = min(w.deadline for w in busy) - time.monotonic()
            ready = set(
                wait(
                    [w.conn for w in busy] + [w.process.sentinel for w in busy],
                    timeout=max(0.0, wait_for),
                )
            )
            for worker in busy:
                outcome = self._collect(worker, ready)
                if outcome is not None:
                    worker.task, worker.deadline = None, float("inf")
                    yield outcome

    def _collect(self, worker: _Worker, ready: set) -> Outcome | None:
        key = worker.task
        if worker.conn in ready:
            try:
                return worker.conn.recv()
            except (EOFError, OSError):
                pass  # died while sending: fall through to the crash report
        if worker.conn in ready or worker.process.sentinel in ready:
            worker.process.join(timeout=1.0)
            reason = _signal_reason(worker.process.exitcode)
            self._replace(worker)
            return Outcome(key, False, reason=reason)
        if time.monotonic() >= worker.deadline:
            self._replace(worker)
            return Outcome(key, False, reason=f"timed out after {self._timeout:g} s")
        return None

    def close(self) -> None:
        for worker in self._workers:
            with contextlib.suppress(OSError):
                worker.conn.send(None)
        for worker in self._workers:
            worker.process.join(timeout=2.0)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            worker.conn.close()
        self._workers = []
