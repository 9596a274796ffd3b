"""Rendering speed: a two-minute, four-part piece to WAV with each engine, and to a piano roll.

    python benchmarks/render.py --repeat 3

Prints the median seconds per engine (FluidSynth only where it and a SoundFont are installed)
and for the PNG, side by side, with seconds of audio per second of rendering.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

import symusic

from lstm_music.render.audio import find_soundfont, render_wav
from lstm_music.render.pianoroll import render_png


def four_parts(seconds: float = 120.0) -> symusic.Score:
    """Quarter notes at 120 bpm in four voices, random steps around fixed centres."""
    rng = random.Random(0)
    score = symusic.Score(480)
    for centre in (72, 64, 55, 43):
        track = symusic.Track("voice", 0, False)
        for beat in range(int(seconds * 2)):
            track.notes.append(symusic.Note(beat * 480, 480, centre + rng.randint(-5, 5), 80))
        score.tracks.append(track)
    return score


def timed(action, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    score = four_parts()
    print(f"machine: {os.cpu_count()} cores; piece: 120 s, 4 voices, {score.note_num()} notes")
    engines = ["fallback", "fluidsynth"] if find_soundfont() else ["fallback"]
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        render_png(score, out / "warm-up.png")  # matplotlib's first import is not the point
        print(f"{'what':28} {'seconds':>8} {'audio s per s':>14}")
        for engine in engines:
            seconds = timed(
                lambda e=engine: render_wav(score, out / f"{e}.wav", engine=e), args.repeat
            )
            print(f"{'WAV, ' + engine:28} {seconds:8.2f} {120 / seconds:14.0f}")
        seconds = timed(lambda: render_png(score, out / "roll.png"), args.repeat)
        print(f"{'PNG piano roll':28} {seconds:8.2f}")


if __name__ == "__main__":
    main()
