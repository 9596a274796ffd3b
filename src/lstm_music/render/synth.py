"""The built-in synthesizer: a piano-ish sound in NumPy, for when no SoundFont is installed.

It is the fallback of `lstm_music.render.audio`, so a WAV can always be written. Each note is a few
harmonics that decay (the higher ones faster, like a struck string) with a short release after
the note ends; velocity sets the loudness. One waveform is computed per pitch and shared by all
notes of that pitch, so a note costs one multiply-add of a slice: minutes of music render in a
fraction of a second. Drum tracks are not played (there is no drum kit), nor pedals.
"""

from __future__ import annotations

import os
import secrets
import wave
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import symusic

RELEASE_SECONDS = 0.25  # how long a note rings on after its end (also the file's tail)
MAX_NOTE_SECONDS = 8.0  # a held note has died away by then: longer notes are cut (saves work)
PEAK = 0.89  # output peak (-1 dBFS): loud enough, never clips
# (amplitude, decay per second) of the first harmonics: a bright attack that mellows
HARMONICS = ((1.0, 1.1), (0.5, 1.8), (0.25, 2.6), (0.12, 3.4), (0.06, 4.2))
ATTACK_SECONDS = 0.004


def note_arrays(score: symusic.Score) -> dict[str, np.ndarray]:
    """Start and length in seconds, pitch and velocity of every non-drum note, concatenated."""
    seconds = score.to("second")
    parts = [t.notes.numpy() for t in seconds.tracks if not t.is_drum and len(t.notes)]
    keys = ("time", "duration", "pitch", "velocity")
    if not parts:
        return {key: np.zeros(0) for key in keys}
    return {key: np.concatenate([p[key] for p in parts]).astype(np.float64) for key in keys}


def synthesize(
    score: symusic.Score, sample_rate: int = 44100, max_frames: int | None = None
) -> np.ndarray:
    """Mono float32 samples in [-PEAK, PEAK]: the score's non-drum notes plus a release tail.

    The length is the score's end (in seconds) plus RELEASE_SECONDS, at most `max_frames`
    (nothing beyond is allocated: a tempo event hours after the music must not ask for
    gigabytes); silence stays exactly 0.
    """
    notes = note_arrays(score)
    end = float(score.to("second").end())
    total = int(np.ceil((end + RELEASE_SECONDS) * sample_rate))
    total = total if max_frames is None else min(total, max_frames)
    audio = np.zeros(total, dtype=np.float32)
    starts = np.maximum(np.round(notes["time"] * sample_rate), 0).astype(np.int64)
    held = np.minimum(np.maximum(notes["duration"], 0.0), MAX_NOTE_SECONDS)
    lengths = np.round(held * sample_rate).astype(np.int64)
    release = _release_curve(sample_rate)
    gains = (np.clip(notes["velocity"], 1, 127) / 127.0) ** 1.6  # soft notes quieter still
    for pitch in np.unique(notes["pitch"]).astype(int):
        chosen = np.flatnonzero(notes["pitch"] == pitch)
        tone = _tone(pitch, int(lengths[chosen].max()) + len(release), sample_rate)
        for i in chosen:
            _add_note(audio, tone, release, int(starts[i]), int(lengths[i]), gains[i])
    peak = float(np.abs(audio).max()) if total else 0.0
    if peak > 0:
        audio *= PEAK / peak
    return audio


def _tone(pitch: int, length: int, sample_rate: int) -> np.ndarray:
    """One note's sound at full velocity: decaying harmonics under Nyquist, with a soft attack."""
    t = np.arange(length, dtype=np.float32) / np.float32(sample_rate)
    frequency = 440.0 * 2.0 ** ((pitch - 69) / 12)
    tone = np.zeros(length, dtype=np.float32)
    for k, (amplitude, decay) in enumerate(HARMONICS, start=1):
        if k * frequency >= sample_rate / 2:
            break
        # low notes ring longer than high ones, as on a piano
        rate = decay * (0.6 + frequency / 880.0)
        phase = np.float32(2 * np.pi * k * frequency) * t
        tone += np.float32(amplitude) * np.sin(phase) * np.exp(np.float32(-rate) * t)
    attack = min(length, max(1, int(ATTACK_SECONDS * sample_rate)))
    tone[:attack] *= np.linspace(0.0, 1.0, attack, dtype=np.float32)
    return tone


def _release_curve(sample_rate: int) -> np.ndarray:
    """Fade after a note's end: exponential, reaching zero at RELEASE_SECONDS (no click)."""
    n = max(1, int(RELEASE_SECONDS * sample_rate))
    curve = np.exp(np.linspace(0.0, -6.0, n, dtype=np.float32))
    return (curve - curve[-1]) / (1 - curve[-1])


def _add_note(
    audio: np.ndarray, tone: np.ndarray, release: np.ndarray, start: int, length: int, gain: float
) -> None:
    """Mix one note into `audio`: held part, then the release (both clipped to the buffer)."""
    stop = min(len(audio), start + length)
    if stop > start:
        audio[start:stop] += np.float32(gain) * tone[: stop - start]
    end = min(len(audio), start + length + len(release))
    if end > stop and stop == start + length:
        n = end - stop
        audio[stop:end] += np.float32(gain) * tone[length : length + n] * release[:n]


@contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """A temporary name in `path`'s folder that becomes `path` when the block succeeds.

    A reader never sees half a file, and a failed write leaves the old file (if any) alone.
    Parent folders are created.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # not mkstemp: its files are private (0600), and the result may be served to others
    name = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.part"
    try:
        yield name
        os.replace(name, path)
    except BaseException:
        name.unlink(missing_ok=True)
        raise


def write_wav(path: Path, samples: np.ndarray, sample_rate: int) -> Path:
    """Write float samples in [-1, 1] (shape (n,) or (n, channels)) as 16-bit PCM, atomically."""
    frames = samples.reshape(len(samples), -1)
    pcm = np.round(np.clip(frames, -1.0, 1.0) * 32767).astype("<i2")
    # the file is opened first: wave.open(name) failing (a name too long) leaves a half-made
    # writer whose clean-up prints "Exception ignored" on the user's terminal
    with replacing(path) as temporary, open(temporary, "wb") as file, wave.open(file) as out:
        out.setnchannels(frames.shape[1])
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(pcm.tobytes())
    return Path(path)


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """A 16-bit PCM WAV as float samples of shape (frames, channels), and its sample rate."""
    with wave.open(str(path), "rb") as file:
        if file.getsampwidth() != 2:
            raise ValueError(f"{path}: not 16-bit PCM")
        data = np.frombuffer(file.readframes(file.getnframes()), dtype="<i2")
        channels, rate = file.getnchannels(), file.getframerate()
    return data.reshape(-1, channels).astype(np.float32) / 32768.0, rate
