"""`lstm-music demo`: new music from the shipped model, as MIDI, audio and a picture, in seconds.

The first thing a newcomer runs: no MIDI files, no training. Three short pieces are generated in
one batch at the default sampling, then `write_pieces` writes each as MIDI, renders it to WAV and
draws its piano roll. Timings per stage are returned, so the command can show where the seconds
went.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from pathlib import Path

from lstm_music.generation.sampling import SamplingOptions


@dataclass
class DemoPiece:
    midi: Path
    wav: Path
    png: Path
    notes: int
    seconds: float  # length of the music
    engine: str  # the synthesizer that rendered the audio
    shortfall: float = 0.0  # seconds short of the asked length (0: as asked)


@dataclass
class DemoResult:
    model: str
    seed: int
    pieces: list[DemoPiece]
    timings: dict[str, float] = field(default_factory=dict)  # stage -> seconds
    warnings: list[str] = field(default_factory=list)


def run_demo(
    out: str | Path,
    model: str | None = None,
    num: int = 3,
    seconds: float = 20.0,
    seed: int | None = None,
    soundfont: str | None = None,
) -> DemoResult:
    """Generate `num` pieces of about `seconds` each with a shipped model (or any checkpoint)."""
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[stage] = timings.get(stage, 0.0) + now - clock
        clock = now

    from lstm_music.generation.pipeline import (
        PieceFiles,
        RenderSettings,
        check_writable,
        write_pieces,
    )
    from lstm_music.model.checkpoint import load_checkpoint
    from lstm_music.model.shipped import resolve_checkpoint

    out = Path(out)
    seed = random.randrange(1, 10_000) if seed is None else seed
    options = SamplingOptions(seconds=seconds, num=num, seed=seed)  # refusals before any work
    check_writable(out, folder=True)
    out.mkdir(parents=True, exist_ok=True)
    lap("start-up")
    path = resolve_checkpoint(model)
    checkpoint = load_checkpoint(path)
    lap("load model")

    def where(index: int) -> PieceFiles:
        midi = out / f"demo-{index + 1}.mid"
        return PieceFiles(midi, midi.with_suffix(".wav"), midi.with_suffix(".png"))

    written = write_pieces(checkpoint, options, where, RenderSettings(soundfont=soundfont))
    for stage, spent in written.timings.items():
        timings[stage] = timings.get(stage, 0.0) + spent
    result = DemoResult(model=model or path.stem, seed=seed, pieces=[], timings=timings)
    for piece in written.pieces:
        midi, audio = piece.files.midi, piece.audio
        result.warnings.extend(f"{midi.name}: {warning}" for warning in piece.warnings)
        if audio.warning and audio.warning not in result.warnings:
            result.warnings.append(audio.warning)
        result.pieces.append(
            DemoPiece(midi, audio.path, piece.files.png, piece.notes, piece.seconds,
                      audio.engine, piece.shortfall)
        )  # fmt: skip
    return result
