"""Listening and looking: a score as a WAV file and as a piano-roll picture.

Audio comes from the best synthesizer at hand: the FluidSynth program with a General MIDI
SoundFont, else symusic's built-in SoundFont synthesizer, else the NumPy synth of
`lstm_music.render.synth` with a warning, so a WAV is always written. Files are written under a
temporary name next to the target and renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import symusic

from lstm_music.errors import LstmMusicError, SettingError
from lstm_music.fsutil import not_regular
from lstm_music.render.synth import PEAK, read_wav, synthesize, write_wav
from lstm_music.tokens.midi import (
    MidiError,
    cut_score,
    note_count,
    read_file,
    read_score,
    trim_after_last_note,
)
from lstm_music.tokens.timing import end_seconds, ticks_at

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
    "no SoundFont found (install fluidsynth and timgm6mb-soundfont, or name a SoundFont file): "
    "used the built-in synth"
)
FLUIDSYNTH_GAIN = 0.5  # FluidSynth's own default (0.2) is quiet; the result is normalised anyway
MAX_RENDER_SECONDS = 1800.0  # audio cap: 30 minutes (a 16-bit stereo WAV of about 320 MB)
MAX_AUDIO_CAP = 86_400.0  # what the cap may be raised to: a day (about 15 GB of WAV)
TAIL_SECONDS = 2.0  # release and reverb an engine may add after the score's end


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
        return _check_soundfont(Path(explicit))
    if os.environ.get(SOUNDFONT_ENV):
        return _check_soundfont(Path(os.environ[SOUNDFONT_ENV]), SOUNDFONT_ENV)
    for candidate in SOUNDFONT_PATHS:
        path = Path(candidate)
        if path.is_file():
            return path
    return None


def _check_soundfont(path: Path, origin: str | None = None) -> Path:
    """`path` if it is a SoundFont; else an error blaming `origin` (an environment variable),
    or, for a path the caller gave, the `soundfont` setting."""

    def refuse(problem: str) -> LstmMusicError:
        if origin:
            return LstmMusicError(f"{origin}: {problem}")
        return SettingError(problem, "soundfont")

    if not path.exists():
        raise refuse(f"no such SoundFont file: {path}")
    problem = not_regular(path)  # a named pipe would block the read below forever
    if problem:
        raise refuse(f"SoundFont {path}: {problem}")
    with open(path, "rb") as file:
        head = file.read(12)
    if head[:4] != b"RIFF" or head[8:12] != b"sfbk":
        raise refuse(f"not a SoundFont (.sf2/.sf3) file: {path}")
    return path


def load_midi(path: str | Path) -> symusic.Score:
    """Read a MIDI file; a missing or broken file is a one-line LstmMusicError naming it.

    Events after the last note (a crafted file can hold them hours later) are dropped: they make
    no sound, and the audio would otherwise be that long."""
    path = Path(path)
    if not path.exists():
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
    if not 0 < max_seconds <= MAX_AUDIO_CAP:  # nan fails too
        raise SettingError(f"the audio cap (max_seconds) must be above 0 and at most "
                           f"{MAX_AUDIO_CAP:g} s, not {max_seconds:g}", "max_seconds")  # fmt: skip
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


__all__ = [
    "ENGINES",
    "NO_SOUNDFONT",
    "SOUNDFONT_ENV",
    "RenderResult",
    "find_soundfont",
    "load_midi",
    "render_midi_file",
    "render_wav",
]
