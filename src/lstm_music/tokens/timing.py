"""Time in a MIDI score: its tempo map, and ticks <-> seconds under it.

One tempo map for every module (reading, rendering, cutting generated pieces), so a piece's
length in seconds is the same number wherever it is measured. Tempos outside MIN_QPM..MAX_QPM
are clamped first: a tempo of 0 or a million BPM would make every duration meaningless.
"""

from __future__ import annotations

import math

import numpy as np
import symusic

MIN_QPM, MAX_QPM = 10.0, 1000.0


def clamp_tempos(score: symusic.Score) -> None:
    """Absurd tempos (0 or a million BPM) would make durations in seconds meaningless."""
    for tempo in score.tempos:
        if not MIN_QPM <= tempo.qpm <= MAX_QPM:
            tempo.qpm = float(np.clip(tempo.qpm, MIN_QPM, MAX_QPM))


def tempo_map(score: symusic.Score) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(tick, seconds at that tick, seconds per tick) at each tempo change; 120 bpm before."""
    tempos = score.tempos.numpy()
    keep = (tempos["time"] >= 0) & (tempos["mspq"] > 0)
    order = np.argsort(tempos["time"][keep], kind="stable")  # at one tick, the last one counts
    ticks = tempos["time"][keep][order].astype(np.float64)
    mspq = tempos["mspq"][keep][order].astype(np.float64)
    if not len(ticks) or ticks[0] > 0:
        ticks, mspq = np.append(0.0, ticks), np.append(500_000.0, mspq)
    per_tick = mspq / 1e6 / score.tpq
    offsets = np.concatenate([[0.0], np.cumsum(np.diff(ticks) * per_tick[:-1])])
    return ticks, offsets, per_tick


def tick_seconds(tempos: tuple[np.ndarray, ...], ticks: np.ndarray) -> np.ndarray:
    """Seconds from the start to each of `ticks`, under a `tempo_map`."""
    changes, offsets, per_tick = tempos
    i = np.clip(np.searchsorted(changes, ticks, side="right") - 1, 0, None)
    return offsets[i] + (ticks - changes[i]) * per_tick[i]


def seconds_at(score: symusic.Score, tick: float) -> float:
    """Seconds from the start to `tick`, following the score's tempo map."""
    return float(tick_seconds(tempo_map(score), np.array([tick], dtype=np.float64))[0])


def ticks_at(score: symusic.Score, seconds: float) -> int:
    """The last tick at or before `seconds` into the score, following its tempo map."""
    changes, offsets, per_tick = tempo_map(score)
    i = max(0, int(np.searchsorted(offsets, seconds, side="right")) - 1)
    return int(changes[i] + math.floor((seconds - offsets[i]) / per_tick[i] + 1e-9))


def seconds_between(score: symusic.Score, start: int, end: int) -> float:
    """Seconds from tick `start` to tick `end` under the score's tempo map."""
    begin, finish = tick_seconds(tempo_map(score), np.array([start, end], dtype=np.float64))
    return float(finish - begin)


def end_seconds(score: symusic.Score) -> float:
    """Seconds to the score's last event, notes or not: what audio of it would last."""
    return seconds_at(score, score.end())
