"""Generation off the event loop: the jobs the bounded queue (web.job_queue) runs, and the
pieces written.

Pieces live in a store keyed by random ids, each in a folder of the server's temporary
directory; the oldest are deleted past the history limit. Nothing here imports FastAPI, so it
is usable (and testable) on its own.
"""

from __future__ import annotations

import random
import shutil
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from lstm_music.errors import LstmMusicError
from lstm_music.generation.sampling import PRIMER_TOKENS, SamplingOptions, with_model_defaults

if TYPE_CHECKING:
    from lstm_music.generation.generate import GeneratedPiece
    from lstm_music.generation.pipeline import PieceFiles, RenderSettings, WrittenPiece
    from lstm_music.generation.primers import PlayedNote

ID_PATTERN = r"^[0-9a-f]{32}$"
# the constraints and controls a piece's settings list when they were asked
CONSTRAINTS = ("key", "key_strict", "pitch_range", "instruments", "density", "polyphony")
FILES = {"midi": ("piece.mid", "audio/midi"), "wav": ("piece.wav", "audio/wav"),
         "png": ("piece.png", "image/png")}  # fmt: skip

T = TypeVar("T")


def new_id() -> str:
    return uuid.uuid4().hex


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
        for old in evicted:  # StoredPiece and Primer keep their files in a folder of their own
            folder = getattr(old, "folder", None)
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)

    def get(self, key: str) -> T | None:
        with self._lock:
            return self._items.get(key)

    def remove(self, key: str) -> None:
        """Forget a record and delete its folder (a streamed piece its client left)."""
        with self._lock:
            old = self._items.pop(key, None)
        folder = getattr(old, "folder", None)
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)

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


PRIMER_READINGS = 4  # model readings (tokenizer, corpus settings) kept per uploaded primer


@dataclass(frozen=True)
class Primer:
    """An uploaded MIDI file, already checked to parse and hold notes.

    Its file is read once per model reading (`primers.reading_key`), the first time a request
    names it with such a model, and only its end is tokenized (`primers.primer_end`); the
    tokens any request can use (`MAX_PRIMER_TOKENS`) are kept, so later requests neither read
    nor tokenize it again (a file of 199,000 notes took 6-9 s of a worker's time per request;
    now 0.2 s once per reading)."""

    id: str
    filename: str
    folder: Path
    notes: int
    seconds: float
    tracks: int
    ends: OrderedDict[str, Any] = field(default_factory=OrderedDict, repr=False, compare=False)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def path(self) -> Path:
        return self.folder / "primer.mid"

    def describe(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in ("id", "filename", "notes", "seconds",
                                                       "tracks")}  # fmt: skip

    def tokens(self, checkpoint, max_tokens: int) -> list[str]:
        """Its last `max_tokens` tokens for this model; errors name the upload, not the
        server's temporary path."""
        from lstm_music.generation.primers import midi_primer_end, reading_key
        from lstm_music.web.schemas import MAX_PRIMER_TOKENS

        key = reading_key(checkpoint)
        reach = max(MAX_PRIMER_TOKENS, max_tokens) if max_tokens > 0 else 0  # 0: all of it
        with self.lock:  # a second request for the same reading waits for the first's
            end = self.ends.get(key)
            if end is None or not end.covers(max_tokens):
                try:
                    end = midi_primer_end(self.path, checkpoint, reach, f"primer {self.filename}")
                except LstmMusicError as error:
                    text = str(error).replace(str(self.path), self.filename)
                    raise LstmMusicError(text) from error
                self.ends[key] = end
                while len(self.ends) > PRIMER_READINGS:
                    self.ends.popitem(last=False)
            self.ends.move_to_end(key)
        return end.last(checkpoint, max_tokens)


@dataclass(frozen=True)
class JobSpec:
    """One generation request, validated; `model_path` comes from the catalog, never a client."""

    model: str
    model_path: Path
    sampling: SamplingOptions  # seed None: the generator draws one and reports it
    primer: Primer | None = None
    primer_tokens: int = PRIMER_TOKENS
    phrase: tuple[PlayedNote, ...] = ()  # a played phrase as the primer (POST /api/stream)

    @property
    def primer_name(self) -> str | None:
        """What a piece lists as its primer: the uploaded file's name, or "played phrase"."""
        if self.primer is not None:
            return self.primer.filename
        return "played phrase" if self.phrase else None


def error_text(error: BaseException) -> str:
    """An error as the API words it, on one line: a user's (an LstmMusicError) as it is, a
    checkpoint's without the server's path, anything else as an internal error."""
    if isinstance(error, LstmMusicError):
        reason = getattr(error, "reason", None)  # a CheckpointError's message without its path
        text = f"this model's checkpoint cannot be used: {reason}" if reason else str(error)
    else:
        text = f"internal error ({type(error).__name__}): {error}; the server keeps running"
    return " ".join(text.split())


def shown_settings(sampling: SamplingOptions) -> dict[str, Any]:
    """The settings a piece lists: the sampling (as used: `Generator.sampling` resolved the
    model's choice), its length in seconds or in tokens, and its tempo when one was set (a
    streamed piece's)."""
    settings = {"temperature": sampling.temperature, "top_k": sampling.top_k,
                "top_p": sampling.top_p}  # fmt: skip
    if sampling.tempo is not None:
        settings["tempo"] = sampling.tempo
    if sampling.guidance != 1:
        settings["guidance"] = sampling.guidance
    length = {"seconds": sampling.seconds} if sampling.seconds else {"tokens": sampling.tokens}
    asked = {name: getattr(sampling, name) for name in CONSTRAINTS if getattr(sampling, name)}
    if "pitch_range" in asked:
        asked["pitch_range"] = list(asked["pitch_range"])
    if "instruments" in asked:
        asked["instruments"] = list(asked["instruments"])
    return settings | length | asked


def midi_instruments(path: Path) -> list[str]:
    """The instruments of a MIDI file's tracks with notes, named as people say them, in track
    order ([] for a file that cannot be read: the piece is listed anyway)."""
    import symusic

    from lstm_music.tokens.instruments import instrument_name, instrument_of

    try:
        score = symusic.Score(str(path))
    except (OSError, RuntimeError, ValueError):
        return []
    names = [instrument_name(instrument_of(track)) for track in score.tracks if len(track.notes)]
    return list(dict.fromkeys(names))


@dataclass(frozen=True)
class StoredPiece:
    """A piece in the server's history: what the API shows of it, and the folder of its files."""

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
    instruments: list[str] = field(default_factory=list)  # of its MIDI's tracks

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
    """Writes pieces with `write_pieces` into `root`/<id>/ (MIDI, WAV and piano roll of each).

    Every piece and its audio are cut at `max_seconds` (the API's longest request), whatever
    the primer or the model writes: a hostile upload cannot fill the server's disk."""

    def __init__(
        self,
        root: Path,
        pieces: Store[StoredPiece],
        cache_size: int = 2,
        max_seconds: float | None = None,
    ) -> None:
        from lstm_music.web.schemas import MAX_SECONDS

        self.root = root
        self.pieces = pieces
        self.cache = CheckpointCache(cache_size)
        self.draw_lock = threading.Lock()  # matplotlib's style settings are process-wide
        self.max_seconds = MAX_SECONDS if max_seconds is None else max_seconds

    def run(self, spec: JobSpec) -> tuple[int, list[StoredPiece]]:
        """The seed used and the new pieces (already in the store). Runs in a worker thread."""
        from lstm_music.generation.pipeline import write_pieces

        checkpoint = self.cache.get(spec.model_path)
        options = self.sampling(spec, checkpoint)
        seed, render = options.seed, self._render()
        slots: list[tuple[str, int]] = []  # (id, number) of each piece, taken as it is written
        made: list[StoredPiece] = []

        def store(piece: WrittenPiece) -> None:  # each piece joins the history once written
            piece_id, number = slots[len(made)]
            made.append(self._store(spec, piece_id, number, options, piece))

        try:
            write_pieces(checkpoint, options, partial(self._files, spec, slots), render, store)
        finally:  # a folder taken for a piece that failed holds no finished piece
            for piece_id, _ in slots[len(made) :]:
                shutil.rmtree(self.root / piece_id, ignore_errors=True)
        return seed, made

    def sampling(self, spec: JobSpec, checkpoint) -> SamplingOptions:
        """What a job generates with: its seed (drawn when none was asked, to be reported), its
        primer's tokens, the server's cap on every piece, and the temperature and top-p the
        model chose where the request gave none (so its pieces list the values used)."""
        seed = spec.sampling.seed
        seed = seed if seed is not None else random.SystemRandom().randrange(1, 100_000)
        primer = self._primer(spec, checkpoint)
        options = replace(spec.sampling, seed=seed, primer=primer, max_seconds=self.max_seconds)
        return with_model_defaults(options, checkpoint.sampling)

    def keep(
        self, spec: JobSpec, options: SamplingOptions, generated: GeneratedPiece
    ) -> StoredPiece:
        """A piece generated outside `run` (a stream) written and stored as `run` does it."""
        from lstm_music.generation.pipeline import write_generated

        slots: list[tuple[str, int]] = []
        try:
            written = write_generated(generated, self._files(spec, slots, 0), self._render())
            return self._store(spec, *slots[0], options, written)
        except BaseException:  # a folder without its finished piece is not kept
            for piece_id, _ in slots:
                shutil.rmtree(self.root / piece_id, ignore_errors=True)
            raise

    def _render(self) -> RenderSettings:
        from lstm_music.generation.pipeline import RenderSettings

        return RenderSettings(max_audio_seconds=self.max_seconds, draw_lock=self.draw_lock)

    def _primer(self, spec: JobSpec, checkpoint) -> list[str]:
        """The played phrase's or the uploaded primer's tokens."""
        from lstm_music.generation.primers import PLAYED_TEMPO, phrase_primer

        if spec.phrase:
            tempo = spec.sampling.tempo or PLAYED_TEMPO
            return phrase_primer(spec.phrase, tempo, checkpoint, spec.primer_tokens)
        if spec.primer is None:
            return []
        return spec.primer.tokens(checkpoint, spec.primer_tokens)

    def _files(self, spec: JobSpec, slots: list[tuple[str, int]], index: int) -> PieceFiles:
        """A new folder, id and number for the next piece written."""
        from lstm_music.generation.pipeline import PieceFiles

        piece_id, number = new_id(), self.pieces.next_number()
        slots.append((piece_id, number))
        folder = self.root / piece_id
        folder.mkdir(parents=True)
        return PieceFiles(*(folder / FILES[kind][0] for kind in ("midi", "wav", "png")),
                          title=f"Piece {number} ({spec.model})")  # fmt: skip

    def _store(
        self,
        spec: JobSpec,
        piece_id: str,
        number: int,
        options: SamplingOptions,
        written: WrittenPiece,
    ) -> StoredPiece:
        """A written piece into the history, its warnings and the audio's joined in one line;
        `options` are the ones it was generated with (`sampling`)."""
        audio = written.audio
        lines = written.warnings + ([audio.warning] if audio.warning else [])
        piece = StoredPiece(
            id=piece_id,
            number=number,
            model=spec.model,
            created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            seed=options.seed,
            settings=shown_settings(options),
            primer=spec.primer_name,
            notes=written.notes,
            seconds=round(written.seconds, 2),
            engine=audio.engine,
            warning="; ".join(lines) or None,
            folder=written.files.midi.parent,
            instruments=midi_instruments(written.files.midi),
        )
        self.pieces.add(piece_id, piece)
        return piece
