"""Ctrl-C and SIGTERM during training: stop at the next step boundary with a resumable state.

While the epoch loop runs, SIGINT and SIGTERM are only noted; the loop sees the note before its
next step, saves the exact position (weights, optimizer, RNG, hidden state, batch) without a
validation, and raises `TrainingInterrupted`, which says where the state is. A second signal
stops at once (KeyboardInterrupt): the last saved state is still whole, since every write is
atomic. Outside the loop (start-up) a signal stops at once as well: nothing was trained yet.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType, TracebackType

from lstm_music.errors import LstmMusicError

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """A signal that stops the process at once; `signum` says which (for the exit status)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class TrainingInterrupted(LstmMusicError):
    """SIGINT or SIGTERM stopped a run; `step` is the step of its saved state (None: none)."""

    def __init__(self, signum: int, run_dir: Path, step: int | None) -> None:
        self.signum, self.run_dir, self.step = signum, run_dir, step
        word = "terminated" if signum == signal.SIGTERM else "interrupted"
        if step is None:
            what = "stopped before the first training step: nothing to resume"
        else:
            what = f"saved a resumable state at step {step} in {run_dir}"
        super().__init__(f"{word}: {what}")


class StopSignals:
    """Notes SIGINT and SIGTERM while `deferring` (the epoch loop), else stops at once.

    Handlers can only be set from the main thread: elsewhere (a web worker, a test thread)
    nothing is installed and signals keep their usual effect.
    """

    def __init__(self) -> None:
        self.received: int | None = None
        self.deferring = False
        self._previous: dict[int, object] = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for signum in SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if not self.deferring or self.received is not None:
            raise Interrupted(signum)
        self.received = signum


__all__ = ["Interrupted", "StopSignals", "TrainingInterrupted"]
