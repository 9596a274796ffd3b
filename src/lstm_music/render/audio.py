"""Listening and looking: a score as a WAV file and as a piano-roll picture.

Audio comes from the best synthesizer at hand: the FluidSynth program with a General MIDI
SoundFont, else symusic's built-in SoundFont synthesizer, else the NumPy synth of
`lstm_music.render.synth` with a warning, so a WAV is always written. Files are written under a
temporary name next to the target and renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import numpy as np
import symusic

from lstm_music.errors import LstmMusicError
from lstm_music.render.synth import PEAK, read_wav, replacing, synthesize, write_wav
from lstm_music.tokens.midi import (
    MidiError,
    cut_score,
    duration_seconds,
    end_seconds,
    note_count,
    read_file,
    read_score,
    tempo_map,
    tick_seconds,
    ticks_at,
    trim_after_last_note,
)

ENGINES = ("auto", "fluidsynth", "symusic", "fallback")
SOUNDFONT_ENV = "LSTM_MUSIC_SOUNDFONT"
FLUIDSYNTH_POLYPHONY = 4096  # voices; its maximum is 65535
SOUNDFONT_PATHS = (
    "/usr/share/sounds/sf2/TimGM6mb.sf2",  # Debian/Ubuntu timgm6mb-soundfont (6 MB)
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",  # fluid-soundfont-gm (140 MB)
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/soundfonts/default.sf2",  # Fedora, Arch
    "/usr/share/soundfonts/FluidR3_GM.sf2",
    "/opt/homebrew/share/soundfonts/default.sf2",  # macOS Homebrew
    "/usr/local/share/soundfonts/default.sf2",
)
NO_SOUNDFONT = (
    "no SoundFont found (install fluidsynth and timgm6mb-soundfont, or pass --soundfont): "
    "used the built-in synth"
)
FLUIDSYNTH_GAIN = 0.5  # FluidSynth's own default (0.2) is quiet; the result is normalised anyway
TIME_UNITS = ("bars", "seconds")
MAX_RENDER_SECONDS = 1800.0  # audio cap: 30 minutes (a 16-bit stereo WAV of about 320 MB)
TAIL_SECONDS = 2.0  # release and reverb an engine may add after the score's end
NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


@dataclass(frozen=True)
class RenderResult:
    """What `render_wav` wrote, and how."""

    path: Path
    engine: str  # "fluidsynth", "symusic" or "fallback"
    soundfont: Path | None  # None for the built-in synth
    seconds: float  # length of the audio
    warning: str | None = None  # one line for the user (fallback used, drums not played, ...)


class _EngineFailed(Exception):
    """A synthesizer that could not render; the message is a short reason."""


def find_soundfont(explicit: str | Path | None = None) -> Path | None:
    """The SoundFont to use: `explicit`, else $LSTM_MUSIC_SOUNDFONT, else a common location.

    An explicit path or environment variable that is not a SoundFont is an error (the user asked
    for it); None when nothing is found.
    """
    if explicit:
        return _check_soundfont(Path(explicit), "--soundfont")
    if os.environ.get(SOUNDFONT_ENV):
        return _check_soundfont(Path(os.environ[SOUNDFONT_ENV]), SOUNDFONT_ENV)
    for candidate in SOUNDFONT_PATHS:
        path = Path(candidate)
        if path.is_file():
            return path
    return None


def _check_soundfont(path: Path, origin: str) -> Path:
    if not path.is_file():
        raise LstmMusicError(f"{origin}: no such SoundFont file: {path}")
    with open(path, "rb") as file:
        head = file.read(12)
    if head[:4] != b"RIFF" or head[8:12] != b"sfbk":
        raise LstmMusicError(f"{origin}: not a SoundFont (.sf2/.sf3) file: {path}")
    return path


def load_midi(path: str | Path) -> symusic.Score:
    """Read a MIDI file; a missing or broken file is a one-line LstmMusicError naming it.

    Events after the last note (a crafted file can hold them hours later) are dropped: they make
    no sound, and the audio would otherwise be that long."""
    path = Path(path)
    if not path.is_file():
        raise LstmMusicError(f"{path}: no such MIDI file")
    try:
        return trim_after_last_note(read_score(read_file(path)))[0]
    except MidiError as error:
        raise LstmMusicError(f"{path}: {error}") from error


def render_midi_file(midi: str | Path, wav: str | Path, **options) -> RenderResult:
    """`render_wav` for a MIDI file (same keyword options)."""
    return render_wav(load_midi(midi), wav, **options)


def render_wav(
    score: symusic.Score,
    path: str | Path,
    soundfont: str | Path | None = None,
    sample_rate: int = 44100,
    engine: str = "auto",
    max_seconds: float | None = None,
) -> RenderResult:
    """Write the score as a 16-bit WAV with the best engine at hand (see the module docstring).

    engine "auto" tries fluidsynth, symusic, then the built-in synth (with a warning when a
    SoundFont engine was wanted but failed or no SoundFont exists); naming an engine uses only
    that one and raises LstmMusicError when it cannot run. Audio is normalised to -1 dBFS.
    A score longer than `max_seconds` is rendered up to there, with a warning: a hostile file
    (a tempo of one tick per hour) must not fill the disk, and the audio never exceeds
    `max_seconds` (None: MAX_RENDER_SECONDS) plus a short release tail.
    """
    max_seconds = MAX_RENDER_SECONDS if max_seconds is None else max_seconds
    if engine not in ENGINES:
        raise LstmMusicError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    if not 8000 <= sample_rate <= 192000:
        raise LstmMusicError(f"sample rate must be 8000-192000 Hz, not {sample_rate}")
    if not (max_seconds > 0 and math.isfinite(max_seconds)):
        raise LstmMusicError(
            f"the audio cap must be a positive number of seconds, not {max_seconds}"
        )
    path = Path(path)
    font = find_soundfont(soundfont) if engine != "fallback" else None
    length, cut = end_seconds(score), None  # events after the music count: they would sound
    if length > max_seconds:
        score = cut_score(score, ticks_at(score, max_seconds))
        cut = f"the score lasts {length:,.0f} s: rendered its first {max_seconds:g} s (audio cap)"
    frames = int((max_seconds + TAIL_SECONDS) * sample_rate)
    result = _render(score, path, font, sample_rate, engine, frames)
    if cut:
        result = replace(result, warning="; ".join(filter(None, (cut, result.warning))))
    return result


def _render(
    score: symusic.Score, path: Path, font: Path | None, sample_rate: int, engine: str, frames: int
) -> RenderResult:
    """`render_wav` after its checks: the engines in turn, at most `frames` samples written."""
    if note_count(score) == 0:
        return _fallback(score, path, sample_rate, "the score has no notes: wrote silence", frames)
    if engine == "fallback":
        return _fallback(score, path, sample_rate, None, frames)
    if font is None:
        if engine != "auto":
            raise LstmMusicError(f"engine {engine} needs a SoundFont: {NO_SOUNDFONT.split(':')[0]}")
        return _fallback(score, path, sample_rate, NO_SOUNDFONT, frames)
    failures = []
    for name, run in (("fluidsynth", _fluidsynth), ("symusic", _symusic)):
        if engine not in ("auto", name):
            continue
        try:
            seconds = run(score, path, font, sample_rate, frames)
            return RenderResult(path, name, font, seconds)
        except _EngineFailed as error:
            if engine == name:
                raise LstmMusicError(f"{name} could not render: {error}") from error
            failures.append(f"{name}: {error}")
    warning = f"{'; '.join(failures)}: used the built-in synth"
    return _fallback(score, path, sample_rate, warning, frames)


def _fallback(
    score: symusic.Score, path: Path, sample_rate: int, warning: str | None, frames: int
) -> RenderResult:
    """The built-in synth: always works; drums are silent and said so."""
    samples = synthesize(score, sample_rate, max_frames=frames)
    if any(track.is_drum and len(track.notes) for track in score.tracks):
        drums = "drum tracks are not played by the built-in synth"
        warning = f"{warning}; {drums}" if warning else drums
    write_wav(path, samples, sample_rate)
    return RenderResult(path, "fallback", None, len(samples) / sample_rate, warning)


def _fluidsynth(
    score: symusic.Score, path: Path, font: Path, sample_rate: int, frames: int
) -> float:
    """Render through a temporary MIDI file with the FluidSynth program; seconds of audio."""
    binary = shutil.which("fluidsynth")
    if binary is None:
        raise _EngineFailed("the fluidsynth program is not installed")
    # it renders ~60x faster than real time; FluidSynth 2.3 never returns when more notes start
    # at once than its polyphony (256 by default), so raise it and keep the wait short
    timeout = 10 + 0.5 * min(end_seconds(score), frames / sample_rate)
    with tempfile.TemporaryDirectory(prefix="lstm-music-render-") as folder:
        midi, raw = Path(folder) / "in.mid", Path(folder) / "out.wav"
        score.dump_midi(str(midi))
        command = [binary, "-ni", "-q", "-g", str(FLUIDSYNTH_GAIN), "-r", str(sample_rate)]
        command += ["-o", f"synth.polyphony={FLUIDSYNTH_POLYPHONY}"]
        command += ["-T", "wav", "-O", "s16", "-F", str(raw), str(font), str(midi)]
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
            )
        except subprocess.TimeoutExpired as error:
            raise _EngineFailed(f"no result after {timeout:.0f} s") from error
        lines = (done.stderr or done.stdout or "").strip().splitlines()
        reason = lines[-1] if lines else f"exit status {done.returncode}"
        # a font it cannot load is no error to it: it plays its default font, or nothing
        failed = [line for line in lines if "failed to load" in line.lower()]
        if done.returncode != 0 or not raw.is_file() or failed:
            raise _EngineFailed(failed[-1] if failed else reason)
        samples, rate = read_wav(raw)
    return _write_normalised(path, samples[:frames], rate, reason if lines else None)


def _symusic(score: symusic.Score, path: Path, font: Path, sample_rate: int, frames: int) -> float:
    """symusic's SoundFont synthesizer (its 0.6 fails under NumPy 2.4: then we fall through)."""
    try:
        synthesizer = symusic.Synthesizer(str(font), sample_rate)
        audio = np.asarray(synthesizer.render(score, stereo=True), dtype=np.float32)
    except Exception as error:  # a TypeError converting its result, a font it cannot read
        first = (str(error).strip().splitlines() or [""])[0].removesuffix(" The signature was")
        raise _EngineFailed(f"{type(error).__name__}: {first}") from error
    if audio.ndim == 2 and audio.shape[0] <= 2 < audio.shape[1]:
        audio = audio.T  # (channels, frames) -> (frames, channels)
    return _write_normalised(path, audio[:frames], sample_rate)


def _write_normalised(
    path: Path, samples: np.ndarray, sample_rate: int, hint: str | None = None
) -> float:
    """Scale to -1 dBFS and write; silence means the engine failed (a broken SoundFont)."""
    peak = float(np.abs(samples).max()) if samples.size else 0.0
    if peak == 0:
        raise _EngineFailed(hint or "only silence came out (does the SoundFont have these sounds?)")
    write_wav(path, samples * (PEAK / peak), sample_rate)
    return len(samples) / sample_rate


def render_png(
    score: symusic.Score, path: str | Path, title: str = "", time_unit: str = "bars"
) -> Path:
    """A piano roll: a bar per note, time across (bars or seconds), pitch up, darker = louder.

    Tracks get different hues when there are several. A score without notes gives an empty,
    labelled picture ("no notes") rather than an error, so a pipeline always has its image.
    """
    if time_unit not in TIME_UNITS:
        raise LstmMusicError(f"time unit must be one of {', '.join(TIME_UNITS)}, not {time_unit!r}")
    import matplotlib
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    from lstm_music.render.plots import STYLE, WIDE_FIGSIZE

    path = Path(path)
    to_x, bar_lines, xlabel = _time_axis(score, time_unit)
    with matplotlib.rc_context(STYLE):
        figure = Figure(figsize=WIDE_FIGSIZE)  # no pyplot: no global figure, backend untouched
        axes = figure.subplots()
        pitches = _draw_notes(axes, score, to_x)
        _pitch_axis(axes, pitches)
        end = float(to_x(np.array([max(score.end(), 1)]))[0])
        axes.set_xlim(float(to_x(np.array([0]))[0]), end)
        if len(bar_lines) <= 300:
            axes.set_xticks(bar_lines, minor=True)
            axes.grid(which="minor", axis="x", alpha=0.12)
        if time_unit == "bars":
            axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_xlabel(xlabel)
        axes.set_ylabel("pitch")
        minutes, seconds = divmod(round(duration_seconds(score)), 60)
        notes = note_count(score)
        axes.set_title(f"{title or path.stem}  ({minutes}:{seconds:02d}, {notes:,} notes)")
        if not notes:
            axes.text(0.5, 0.5, "no notes", transform=axes.transAxes, ha="center", color="0.5")
        figure.text(0.99, 0.01, "darker = louder", ha="right", va="bottom", color="0.5", size=8)
        figure.tight_layout()
        with replacing(path) as temporary:
            figure.savefig(temporary, format="png")
    return path


def _draw_notes(axes, score: symusic.Score, to_x: Callable) -> np.ndarray:
    """One rectangle per note, shaded by velocity, a hue per track; the pitches drawn."""
    from matplotlib.collections import PolyCollection
    from matplotlib.colors import to_rgb
    from matplotlib.patches import Patch

    from lstm_music.render.plots import PALETTE

    tracks = [track for track in score.tracks if len(track.notes)]
    handles, pitches = [], [np.zeros(0, dtype=int)]
    for i, track in enumerate(tracks):
        notes = track.notes.numpy()
        start = to_x(notes["time"].astype(np.float64))
        stop = to_x((notes["time"] + notes["duration"]).astype(np.float64))
        stop = np.maximum(stop, start + (stop.max() - start.min() + 1) * 1e-3)  # never invisible
        low, high = notes["pitch"] - 0.4, notes["pitch"] + 0.4
        corners = [(start, low), (start, high), (stop, high), (stop, low)]
        boxes = np.stack([np.stack(corner, axis=-1) for corner in corners], axis=1)
        hue = np.array(to_rgb(PALETTE[i % len(PALETTE)]))
        shade = 0.3 + 0.7 * np.clip(notes["velocity"], 0, 127)[:, None] / 127.0
        colours = 1.0 - shade * (1.0 - hue)  # soft notes fade towards white
        axes.add_collection(PolyCollection(boxes, facecolors=colours, edgecolors="none"))
        handles.append(Patch(color=hue, label=track.name or f"track {i + 1}"))
        pitches.append(notes["pitch"].astype(int))
    if len(tracks) > 1:
        axes.legend(handles=handles[:8], loc="upper right", fontsize=8, ncols=min(4, len(tracks)))
    return np.concatenate(pitches)


def _pitch_axis(axes, pitches: np.ndarray) -> None:
    """Trim to the pitches used (plus a margin); name every C, or C/E/G in a narrow range."""
    low, high = (int(pitches.min()) - 2, int(pitches.max()) + 2) if len(pitches) else (55, 79)
    if high - low < 12:
        low, high = low - (12 - (high - low)) // 2, low + 12
    axes.set_ylim(low - 0.5, high + 0.5)
    named = [p for p in range(low, high + 1) if p % 12 == 0]
    if len(named) < 2:
        named = [p for p in range(low, high + 1) if p % 12 in (0, 4, 7)]
    axes.set_yticks(named, [f"{NOTE_NAMES[p % 12]}{p // 12 - 1}" for p in named])


def _time_axis(score: symusic.Score, unit: str) -> tuple[Callable, np.ndarray, str]:
    """Ticks -> x (bar number from 1, or seconds), the bar lines in x, and the axis label."""
    bars = _bar_starts(score)
    if unit == "seconds":
        to_x = partial(tick_seconds, tempo_map(score))
        return to_x, to_x(bars), "time (seconds)"
    to_x = partial(_bar_number, bars)
    return to_x, np.arange(1, len(bars) + 1, dtype=np.float64), "bar"


def _bar_number(bars: np.ndarray, ticks: np.ndarray) -> np.ndarray:
    return np.interp(ticks, bars, np.arange(len(bars))) + 1


def _bar_starts(score: symusic.Score) -> np.ndarray:
    """Tick of every bar line up to (and past) the score's end; 4/4 until a time signature."""
    signatures = sorted(
        (int(s.time), s.numerator, s.denominator)
        for s in score.time_signatures
        if s.numerator > 0 and s.denominator > 0 and s.time >= 0
    )
    if not signatures or signatures[0][0] > 0:
        signatures.insert(0, (0, 4, 4))
    end, starts = max(score.end(), 1), []
    for k, (time, numerator, denominator) in enumerate(signatures):
        length = max(1e-9, score.ticks_per_quarter * 4 * numerator / denominator)
        last = k == len(signatures) - 1
        stop = end + length if last else signatures[k + 1][0]
        count = int(np.ceil((stop - time) / length))
        starts.append(time + length * np.arange(max(count, 2) if last else count))
    return np.concatenate(starts)
