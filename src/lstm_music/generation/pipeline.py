"""`write_pieces`: a checkpoint and sampling options -> pieces in files, and what was written.

The one path from generated pieces to files, used by `lstm-music generate`, `lstm-music demo`
and the web server's jobs: each piece becomes a MIDI file, and where the caller asks, a WAV
rendering and a piano-roll PNG. The caller says where each piece goes (`PieceFiles`), since
the three name their files differently; this module decides nothing about names and prints
nothing: it returns paths, note counts, lengths, warnings and the synthesizer used.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from lstm_music.errors import LstmMusicError
from lstm_music.generation.generate import GeneratedPiece, generate
from lstm_music.generation.sampling import SamplingOptions
from lstm_music.tokens.midi import MIN_TPQ

if TYPE_CHECKING:
    from lstm_music.model.checkpoint import Checkpoint
    from lstm_music.render.audio import RenderResult


@dataclass
class PieceFiles:
    """Where one piece goes: its MIDI file, and audio and a piano roll when wanted."""

    midi: Path
    wav: Path | None = None
    png: Path | None = None
    title: str | None = None  # the piano roll's title (None: the MIDI file's name)


@dataclass
class RenderSettings:
    """How the audio and pictures are made.

    `max_audio_seconds` caps the audio (None: the renderer's own cap); `draw_lock` is held
    while a piano roll is drawn, for callers drawing from several threads (matplotlib's style
    settings are process-wide)."""

    soundfont: str | Path | None = None
    max_audio_seconds: float | None = None
    draw_lock: AbstractContextManager | None = None


@dataclass
class WrittenPiece:
    """One piece as written: its files, its music, and what the user should be told."""

    files: PieceFiles
    tokens: list[str]  # primer tokens followed by the new ones
    primer_length: int
    notes: int
    seconds: float  # length of the music
    shortfall: float  # how much shorter than the asked seconds or bars
    token_cap_reached: bool  # the shortfall is the new-token cap's doing
    warnings: list[str]  # generation's: cuts, shortfalls, no notes
    audio: RenderResult | None = None  # the WAV's path, length, synthesizer and warning

    @property
    def new_tokens(self) -> int:
        return len(self.tokens) - self.primer_length

    @property
    def engine(self) -> str | None:
        """The synthesizer that rendered the audio (None without audio)."""
        return self.audio.engine if self.audio else None


@dataclass
class WrittenPieces:
    """Every piece written, in order, and the seconds each stage took."""

    pieces: list[WrittenPiece]
    timings: dict[str, float] = field(default_factory=dict)  # stage -> seconds

    @property
    def generate_seconds(self) -> float:
        """Time spent sampling tokens only (not writing, rendering or drawing)."""
        return self.timings.get("generate", 0.0)


def check_writable(path: Path, folder: bool = False) -> None:
    """Refuse, before any work, a file path that names a folder (or a folder path that names a
    file), or that lies under a file: what the music is written to must be writable there."""
    path = Path(path)
    if path.exists() and path.is_dir() != folder:
        what = "a file" if path.is_dir() else "a folder"
        raise LstmMusicError(f"cannot write {what} at {path}: "
                             f"{'a folder' if path.is_dir() else 'a file'} is there")  # fmt: skip
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise LstmMusicError(f"cannot write {path}: {parent} is a file, not a folder")
            return


def write_pieces(
    checkpoint: Checkpoint,
    options: SamplingOptions,
    where: Callable[[int], PieceFiles],
    render: RenderSettings | None = None,
    on_written: Callable[[WrittenPiece], None] | None = None,
    on_progress: Callable[[float], None] | None = None,
) -> WrittenPieces:
    """Generate `options.num` pieces and write piece i to `where(i)`.

    `where` is called once per piece, after generation, in order: a caller numbering its pieces
    (the web server's history) takes a number only for a piece that is really written.
    Timings are per stage: "generate", "render audio" (the MIDI file and its WAV), "draw piano
    roll". `on_written` sees each piece as soon as its files exist (the CLI prints it, the web
    server stores it), so a failure later in the batch loses none that were finished;
    `on_progress` hears how far generation has come (0 to 1, see `generate`).
    """
    render = render or RenderSettings()
    timings: dict[str, float] = {}
    started = time.perf_counter()
    generated = generate(checkpoint, options, on_progress)
    timings["generate"] = time.perf_counter() - started
    written = []
    for index, piece in enumerate(generated):
        written.append(_write(piece, where(index), render, timings))
        if on_written is not None:
            on_written(written[-1])
    return WrittenPieces(written, timings)


WRITTEN_TPQ = 480  # ticks per quarter of the MIDI files written when the tokens' own are too few


def _lap(timings: dict[str, float], stage: str, started: float) -> float:
    """Add the time since `started` to `stage`; the time now, for the next stage."""
    now = time.perf_counter()
    timings[stage] = timings.get(stage, 0.0) + now - started
    return now


def write_generated(
    piece: GeneratedPiece, files: PieceFiles, render: RenderSettings | None = None
) -> WrittenPiece:
    """A piece generated elsewhere (a stream) written as `write_pieces` writes each of its own."""
    return _write(piece, files, render or RenderSettings(), {})


def _write(
    piece: GeneratedPiece, files: PieceFiles, render: RenderSettings, timings: dict[str, float]
) -> WrittenPiece:
    """One piece's MIDI file, then its WAV and its piano roll when `files` names them."""
    from lstm_music.render.audio import render_wav
    from lstm_music.render.pianoroll import render_png

    clock = time.perf_counter()
    score = piece.score
    if score.tpq < MIN_TPQ:  # MidiTok decodes REMI at 16 ticks per quarter, which every reader
        score = score.resample(WRITTEN_TPQ, min_dur=0)  # (ours too) takes for a damaged header
    files.midi.parent.mkdir(parents=True, exist_ok=True)
    score.dump_midi(str(files.midi))
    audio = None
    if files.wav is not None:
        audio = render_wav(
            score, files.wav, soundfont=render.soundfont, max_seconds=render.max_audio_seconds
        )
    clock = _lap(timings, "render audio", clock)
    if files.png is not None:
        with render.draw_lock or contextlib.nullcontext():
            render_png(score, files.png, title=files.title or files.midi.name)
        _lap(timings, "draw piano roll", clock)
    return WrittenPiece(
        files=files,
        tokens=piece.tokens,
        primer_length=piece.primer_length,
        notes=score.note_num(),
        seconds=piece.seconds,
        shortfall=piece.shortfall,
        token_cap_reached=piece.token_cap_reached,
        warnings=list(piece.warnings),
        audio=audio,
    )
