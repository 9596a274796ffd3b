"""Generation off the event loop: a bounded queue, a few worker threads, and the pieces written.

A request either gets a slot (running, or waiting for a worker) or is refused at once with
`QueueFull`, which the app answers with HTTP 429 and a Retry-After: a burst of requests can
never pile up unbounded work or memory. Pieces live in a store keyed by random ids, each in a
folder of the server's temporary directory; the oldest are deleted past the history limit.
Nothing here imports FastAPI, so it is usable (and testable) on its own.
"""

from __future__ import annotations

import asyncio
import math
import random
import shutil
import threading
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from lstm_music.errors import LstmMusicError

if TYPE_CHECKING:
    from lstm_music.generation.generate import GeneratedPiece

ID_PATTERN = r"^[0-9a-f]{32}$"
FILES = {"midi": ("piece.mid", "audio/midi"), "wav": ("piece.wav", "audio/wav"),
         "png": ("piece.png", "image/png")}  # fmt: skip

T = TypeVar("T")


def new_id() -> str:
    return uuid.uuid4().hex


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
        with self._lock:
            if self._busy >= self.max_queue:
                raise QueueFull(self._busy, self._retry_after())
            self._busy += 1

        def timed() -> T:
            started = time.perf_counter()
            try:
                return function(*args)
            finally:
                with self._lock:
                    self._durations.append(time.perf_counter() - started)

        def release(_) -> None:  # when the work is really over, even if the client left
            with self._lock:
                self._busy -= 1

        try:
            future = self._executor.submit(timed)
        except RuntimeError:  # shutting down
            release(None)
            raise QueueFull(self.max_queue, 5) from None
        future.add_done_callback(release)
        return await asyncio.wrap_future(future)

    def shutdown(self) -> None:
        """Drop waiting jobs, let running ones finish (they are short)."""
        self._executor.shutdown(wait=True, cancel_futures=True)


class Store(Generic[T]):
    """Records by id, oldest first; past `limit`, the oldest go and so does their folder."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._items: OrderedDict[str, T] = OrderedDict()
        self._lock = threading.Lock()
        self._count = 0

    def next_number(self) -> int:
        with self._lock:
            self._count += 1
            return self._count

    def add(self, key: str, item: T) -> None:
        with self._lock:
            self._items[key] = item
            evicted = []
            while len(self._items) > self.limit:
                evicted.append(self._items.popitem(last=False)[1])
        for old in evicted:  # Piece and Primer keep their files in a folder of their own
            folder = getattr(old, "folder", None)
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)

    def get(self, key: str) -> T | None:
        with self._lock:
            return self._items.get(key)

    def newest_first(self) -> list[T]:
        with self._lock:
            return list(reversed(self._items.values()))

    def __len__(self) -> int:
        return len(self._items)


class CheckpointCache:
    """Loaded checkpoints, the most recently used kept (loading costs more than generating)."""

    def __init__(self, size: int = 2) -> None:
        self.size = size
        self._items: OrderedDict[tuple[Path, int], Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, path: Path):  # -> Checkpoint
        from lstm_music.model.checkpoint import CheckpointError, load_checkpoint

        try:
            key = (path, path.stat().st_mtime_ns)
        except OSError as error:  # removed or made unreadable after the model list was built
            reason = "the model file was removed or cannot be read"
            raise CheckpointError(f"{path}: {reason}", reason) from error
        with self._lock:
            if key not in self._items:
                self._items[key] = load_checkpoint(path)
                while len(self._items) > self.size:
                    self._items.popitem(last=False)
            self._items.move_to_end(key)
            return self._items[key]


@dataclass(frozen=True)
class Primer:
    """An uploaded MIDI file, already checked to parse and hold notes."""

    id: str
    filename: str
    folder: Path
    notes: int
    seconds: float
    tracks: int

    @property
    def path(self) -> Path:
        return self.folder / "primer.mid"


@dataclass(frozen=True)
class JobSpec:
    """One generation request, validated; `model_path` comes from the catalog, never a client."""

    model: str
    model_path: Path
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 0.95
    seconds: float | None = None
    tokens: int = 512
    seed: int | None = None
    num: int = 1
    primer: Primer | None = None
    primer_tokens: int = 100


@dataclass(frozen=True)
class Piece:
    id: str
    number: int
    model: str
    created: str
    seed: int
    settings: dict[str, Any]
    primer: str | None
    notes: int
    seconds: float
    engine: str
    warning: str | None
    folder: Path = field(repr=False)

    def file(self, kind: str) -> Path:
        return self.folder / FILES[kind][0]

    def download_name(self, kind: str) -> str:
        suffix = Path(FILES[kind][0]).suffix
        return f"lstm-music-{self.number}-{self.model}-seed{self.seed}{suffix}"

    def describe(self) -> dict[str, Any]:
        info = {k: v for k, v in vars(self).items() if k != "folder"}
        info["title"] = f"Piece {self.number}"
        info.update({f"{kind}_url": f"/api/pieces/{self.id}/{kind}" for kind in FILES})
        return info


class Generator:
    """Writes pieces: sample, then MIDI, WAV and piano roll for each, into `root`/<id>/.

    Every piece and its audio are cut at `max_seconds` (the API's longest request), whatever
    the primer or the model writes: a hostile upload cannot fill the server's disk."""

    def __init__(
        self,
        root: Path,
        pieces: Store[Piece],
        cache_size: int = 2,
        max_seconds: float | None = None,
    ) -> None:
        from lstm_music.web.schemas import MAX_SECONDS

        self.root = root
        self.pieces = pieces
        self.cache = CheckpointCache(cache_size)
        self.draw_lock = threading.Lock()  # matplotlib's style settings are process-wide
        self.max_seconds = MAX_SECONDS if max_seconds is None else max_seconds

    def run(self, spec: JobSpec) -> tuple[int, list[Piece]]:
        """The seed used and the new pieces (already in the store). Runs in a worker thread."""
        from lstm_music.generation.generate import GenerateOptions, generate
        from lstm_music.generation.primers import midi_primer

        checkpoint = self.cache.get(spec.model_path)
        seed = spec.seed if spec.seed is not None else random.SystemRandom().randrange(1, 100_000)
        primer = []
        if spec.primer is not None:
            try:
                primer = midi_primer(spec.primer.path, checkpoint, spec.primer_tokens)
            except LstmMusicError as error:  # name the upload, not the server's temp path
                text = str(error).replace(str(spec.primer.path), spec.primer.filename)
                raise LstmMusicError(text.split(" (use --")[0]) from error
        options = GenerateOptions(
            tokens=spec.tokens,
            seconds=spec.seconds,
            temperature=spec.temperature,
            top_k=spec.top_k,
            top_p=spec.top_p,
            num=spec.num,
            seed=seed,
            primer=primer,
            max_seconds=self.max_seconds,
        )
        settings = {"temperature": spec.temperature, "top_k": spec.top_k, "top_p": spec.top_p}
        settings.update({"seconds": spec.seconds} if spec.seconds else {"tokens": spec.tokens})
        made = []
        for generated in generate(checkpoint, options):
            made.append(self._write(spec, generated, seed, settings))
        return seed, made

    def _write(
        self, spec: JobSpec, generated: GeneratedPiece, seed: int, settings: dict[str, Any]
    ) -> Piece:
        """One GeneratedPiece as files; its warnings (shortfall, cuts) and the audio's, joined."""
        from lstm_music.render.audio import render_png, render_wav
        from lstm_music.tokens.midi import duration_seconds, note_count

        score = generated.score
        piece_id, number = new_id(), self.pieces.next_number()
        folder = self.root / piece_id
        folder.mkdir(parents=True)
        score.dump_midi(str(folder / FILES["midi"][0]))
        audio = render_wav(score, folder / FILES["wav"][0], max_seconds=self.max_seconds)
        lines = [text.split(" (use --")[0] for text in generated.warnings]  # no CLI hints
        warning = "; ".join(lines + ([audio.warning] if audio.warning else [])) or None
        with self.draw_lock:
            render_png(score, folder / FILES["png"][0], title=f"Piece {number} ({spec.model})")
        piece = Piece(
            id=piece_id,
            number=number,
            model=spec.model,
            created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            seed=seed,
            settings=settings,
            primer=spec.primer.filename if spec.primer else None,
            notes=note_count(score),
            seconds=round(duration_seconds(score), 2),
            engine=audio.engine,
            warning=warning,
            folder=folder,
        )
        self.pieces.add(piece_id, piece)
        return piece
