"""The isolated pool: a task that crashes, hangs or eats memory costs only itself."""

from __future__ import annotations

import os
import signal
import time

from lstm_music.corpus.workers import IsolatedPool


class Job:
    """Payloads name what to do, so one pool run can mix good and hostile tasks."""

    def __call__(self, payload: str) -> str:
        if payload == "segfault":
            os.kill(os.getpid(), signal.SIGSEGV)
        if payload == "hang":
            time.sleep(60)
        if payload == "memory":
            hog = bytearray(4 * 1024**3)  # 4 GB, over the 256 MB limit below
            return str(len(hog))
        if payload == "error":
            raise KeyError("boom")
        if payload == "exit":
            os._exit(3)
        return payload.upper()


def test_hostile_tasks_fail_alone() -> None:
    tasks = ["a", "segfault", "b", "hang", "c", "memory", "d", "error", "exit", "e"]
    pool = IsolatedPool(Job(), workers=2, timeout=2.0, memory_mb=256)
    started = time.monotonic()
    outcomes = {o.key: o for o in pool.imap_unordered((t, t) for t in tasks)}
    assert time.monotonic() - started < 20
    assert set(outcomes) == set(tasks)
    for good in "abcde":
        assert outcomes[good].ok and outcomes[good].result == good.upper()
    assert outcomes["segfault"].reason == "worker crashed (SIGSEGV)"
    assert outcomes["hang"].reason == "timed out after 2 s"
    assert "memory limit" in outcomes["memory"].reason
    assert outcomes["error"].reason.startswith("KeyError: 'boom'")
    assert outcomes["exit"].reason == "worker exited unexpectedly (code 3)"


def test_no_worker_is_left_behind() -> None:
    import multiprocessing

    pool = IsolatedPool(Job(), workers=2, timeout=1.0)
    list(pool.imap_unordered([("x", "hang"), ("y", "y")]))
    assert not multiprocessing.active_children()


class Bomb:
    """A result whose pickling kills the worker: it dies while sending, mid-write."""

    def __reduce__(self):
        os.kill(os.getpid(), signal.SIGSEGV)


class SendJob:
    def __call__(self, payload: str) -> object:
        return Bomb() if payload == "bomb" else payload.upper()


def test_a_death_while_sending_costs_only_its_task() -> None:
    # pebble's shared, locked result pipe stalls then breaks the whole pool here (workers.py)
    tasks = ["a", "bomb", "b", "c", "d"]
    started = time.monotonic()
    pool = IsolatedPool(SendJob(), workers=2, timeout=5.0)
    outcomes = {o.key: o for o in pool.imap_unordered((t, t) for t in tasks)}
    assert time.monotonic() - started < 10
    assert outcomes["bomb"].reason == "worker crashed (SIGSEGV)"
    assert all(outcomes[good].result == good.upper() for good in "abcd")
