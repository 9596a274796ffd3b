"""Equal-length excerpts of pieces and the musical features the listening test compares.

Excerpts: EXCERPT_BARS (4) consecutive bars, by the piece's own time signatures (`Notes.meters`;
4/4 where a file has none, so 16 quarter-note beats then), not overlapping, from the bar of the
first note. Bars rather than seconds: tempo is a rendering choice many tokenizers do not keep,
and structure (a repeated bar, an ostinato) lives in bars. A window that runs more than half a bar
past the piece's last note is dropped (a cut-off ending is not music), and so is one with fewer
than MIN_NOTES notes. At most MAX_PER_PIECE excerpts, evenly spread, come from one piece, so a
long piece does not outweigh many short ones. Notes are clipped at the window's end.

Features, one vector per excerpt (`FEATURE_NAMES`): texture, from `statistics` where it already
measures it (pitch range, notes per bar, inter-onset intervals, note lengths, polyphony) plus
pitch-class, melodic-interval (top voice) and vertical-interval (harmony) histograms, silence
and velocity; the onset grid (shares of
onsets on the 16th, 8th and beat grid, the entropy of onset positions in the bar); and structure:
the share of the excerpt's bars whose rhythm (onset positions), pitch pattern (positions and
pitches) or transposed pitch pattern recurs in another bar of the same excerpt, and the
periodicity of the bass (the lowest pitch sounding in each beat): the best share of beats equal to
the beat k earlier and the best autocorrelation, over lags of 2 beats to half the excerpt.
Recurrence is counted inside the excerpt, not the whole piece: over a whole piece it grows with
the piece's length, and generated pieces are shorter than most real ones.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np

from lstm_music.evaluation.statistics import (
    EPSILON,
    Notes,
    inter_onset_intervals,
    notes_per_bar,
    polyphony,
)

EXCERPT_BARS = 4
MIN_NOTES = 8  # an excerpt with fewer notes says little
MAX_PER_PIECE = 12
MAX_BARS = 20_000  # bars of one piece looked at, at most (a bound on hostile time signatures)
STEPS = 4  # grid steps per quarter note: sixteenth notes
INTERVAL_BINS = (0, 1, 2, 3, 4, 5, 6, 7, 8, 12)  # |interval| bins' lower edges, in semitones
MAX_VERTICAL = 512  # notes of an excerpt whose vertical intervals are counted (memory: n^2)

FEATURE_NAMES = (
    *(f"pitch_class_{i}" for i in range(12)),
    *(f"interval_{low}" for low in INTERVAL_BINS),
    *(f"vertical_{ic}" for ic in range(7)),
    "mean_interval", "pitch_mean", "pitch_std", "pitch_range", "distinct_pitches",
    "distinct_classes", "notes_per_bar_mean", "notes_per_bar_std", "ioi_mean", "ioi_std",
    "length_mean", "length_std", "polyphony_mean", "polyphony_max", "silence",
    "velocity_mean", "velocity_std", "on_16th", "on_8th", "on_beat", "position_entropy",
    "rhythm_repeat", "pitch_repeat", "transposed_repeat", "bass_match", "bass_autocorr",
)  # fmt: skip


def bar_edges(notes: Notes, until: float) -> np.ndarray:
    """Start (quarters) of every bar from 0 to `until`, then the last one's end; a time
    signature change opens a bar, as in MIDI files (`statistics.bar_numbers`)."""
    starts: list[float] = []
    end = 0.0
    for i, (start, length) in enumerate(notes.meters):
        stop = notes.meters[i + 1][0] if i + 1 < len(notes.meters) else until
        count = math.ceil((min(stop, until) - start) / length - EPSILON)
        count = min(max(count, 0), MAX_BARS - len(starts))
        starts.extend(start + k * length for k in range(count))
        end = start + count * length if count else end
        if len(starts) >= MAX_BARS:
            break
    return np.array([*starts, end] if starts else [], dtype=np.float64)


def excerpts(notes: Notes, bars: int = EXCERPT_BARS) -> list[tuple[Notes, np.ndarray]]:
    """The piece's excerpts, each with its bars' starts (from 0): see the module docstring."""
    if len(notes) < MIN_NOTES:
        return []
    piece_end = float(notes.end.max())
    edges = bar_edges(notes, piece_end)
    if not len(edges):
        return []
    first = max(int(np.searchsorted(edges, notes.onset[0] + EPSILON, side="right")) - 1, 0)
    windows = np.arange(first, len(edges) - bars, bars)
    begins, ends = edges[windows], edges[windows + bars]
    whole = ends <= piece_end + (ends - edges[windows + bars - 1]) / 2
    low = np.searchsorted(notes.onset, begins - EPSILON)  # notes are sorted by onset
    high = np.searchsorted(notes.onset, ends - EPSILON)
    chosen = windows[whole & (high - low >= MIN_NOTES)]
    if len(chosen) > MAX_PER_PIECE:
        chosen = chosen[np.linspace(0, len(chosen) - 1, MAX_PER_PIECE).round().astype(int)]
    return [_cut(notes, edges[bar : bar + bars + 1]) for bar in chosen]


def _cut(notes: Notes, edges: np.ndarray) -> tuple[Notes, np.ndarray]:
    """The notes starting in [edges[0], edges[-1]), moved to start at 0 and clipped there."""
    begin, end = float(edges[0]), float(edges[-1])
    inside = (notes.onset >= begin - EPSILON) & (notes.onset < end - EPSILON)
    meters = tuple((max(s - begin, 0.0), length) for s, length in notes.meters if s < end)
    meters = tuple(m for i, m in enumerate(meters) if i + 1 == len(meters) or meters[i + 1][0] > 0)
    velocity = None if notes.velocity is None else notes.velocity[inside]
    onset = notes.onset[inside] - begin
    cut = np.minimum(notes.end[inside], end) - begin
    return Notes(onset, cut, notes.pitch[inside], meters, velocity), np.asarray(edges) - begin


def features(excerpt: Notes, edges: np.ndarray) -> np.ndarray:
    """The excerpt's feature vector, in the order of FEATURE_NAMES."""
    pitch = excerpt.pitch
    classes = np.bincount(pitch % 12, minlength=12) / len(pitch)
    top = _top_voice(excerpt)
    steps = np.abs(np.diff(top))
    intervals = np.bincount(np.digitize(steps, INTERVAL_BINS) - 1, minlength=len(INTERVAL_BINS))
    intervals = intervals / max(len(steps), 1)
    per_bar = notes_per_bar(excerpt)
    ioi = np.log2(np.maximum(inter_onset_intervals(excerpt), 1 / 48))
    lengths = np.log2(np.maximum(excerpt.duration, 1 / 48))
    sounding = polyphony(excerpt)
    velocity = excerpt.velocity if excerpt.velocity is not None else np.zeros(len(pitch))
    texture = [
        float(steps.mean()) if len(steps) else 0.0, pitch.mean(), pitch.std(), np.ptp(pitch),
        len(np.unique(pitch)), len(np.unique(pitch % 12)), per_bar.mean(), per_bar.std(),
        _mean(ioi), _std(ioi), lengths.mean(), lengths.std(), sounding.mean(), sounding.max(),
        _silence(excerpt, edges[-1]), velocity.mean(), velocity.std(),
    ]  # fmt: skip
    harmony = _vertical(excerpt)
    structure = [*_grid(excerpt, edges), *_repeats(excerpt, edges), *_bass(excerpt, edges[-1])]
    return np.concatenate([classes, intervals, harmony, texture, structure]).astype(np.float64)


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if len(values) else 0.0


def _std(values: np.ndarray) -> float:
    return float(values.std()) if len(values) else 0.0


def _top_voice(notes: Notes) -> np.ndarray:
    """The highest pitch at each distinct onset (onsets sorted, pitches ascending within)."""
    last = np.append(np.diff(notes.onset) > EPSILON, True)
    return notes.pitch[last]


def _vertical(notes: Notes) -> np.ndarray:
    """Histogram of the interval classes (0-6 semitones, octaves folded) between each note and
    the notes sounding when it starts, each pair once: the harmony, which shuffled or wandering
    pitches lose."""
    onset, end, pitch = (a[:MAX_VERTICAL] for a in (notes.onset, notes.end, notes.pitch))
    now = onset[:, None]
    held = (onset[None, :] < now - EPSILON) & (end[None, :] > now + EPSILON)
    index = np.arange(len(onset))
    together = (np.abs(onset[None, :] - now) <= EPSILON) & (index[None, :] < index[:, None])
    distance = np.abs(pitch[:, None] - pitch[None, :])[held | together] % 12
    counts = np.bincount(np.minimum(distance, 12 - distance), minlength=7)
    return counts / max(counts.sum(), 1)


def _silence(notes: Notes, length: float) -> float:
    """Share of the excerpt's sixteenth steps with no note sounding."""
    count = max(int(round(length * STEPS)), 1)
    covered = np.zeros(count + 1, dtype=np.int64)
    first = np.clip(np.floor(notes.onset * STEPS + EPSILON).astype(int), 0, count)
    last = np.clip(np.ceil(notes.end * STEPS - EPSILON).astype(int), 0, count)
    np.add.at(covered, first, 1)
    np.add.at(covered, last, -1)
    return float((np.cumsum(covered)[:count] <= 0).mean())


def _positions(notes: Notes, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each note's bar in the excerpt, its position there in sixteenths, and whether it lies on
    that grid."""
    bar = np.clip(np.searchsorted(edges, notes.onset + EPSILON, side="right") - 1, 0, None)
    bar = np.minimum(bar, len(edges) - 2)
    exact = (notes.onset - edges[bar]) * STEPS
    position = np.round(exact).astype(np.int64)
    return bar, position, np.abs(exact - position) < 0.01


def _grid(notes: Notes, edges: np.ndarray) -> list[float]:
    """Shares of onsets on the 16th, 8th and beat grid; entropy of the positions in the bar
    (0: every onset at one position, 1: spread evenly over all the bar's sixteenths)."""
    times = notes.onset * STEPS
    on = [float((np.abs(times / k - np.round(times / k)) < 0.01 / k).mean()) for k in (1, 2, 4)]
    _, position, gridded = _positions(notes, edges)
    slots = max(int(round(np.diff(edges).max() * STEPS)), 2)
    counts = np.bincount(np.clip(position[gridded], 0, slots - 1), minlength=slots)
    share = counts[counts > 0] / max(counts.sum(), 1)
    return [*on, float(-(share * np.log(share)).sum() / math.log(slots))]


def _repeats(notes: Notes, edges: np.ndarray) -> list[float]:
    """Shares of the excerpt's non-empty bars whose rhythm, pitch pattern or transposed pitch
    pattern recurs in another of its bars."""
    bar, position, _ = _positions(notes, edges)
    patterns: list[list[tuple]] = [[], [], []]
    for b in np.unique(bar):
        mine = bar == b
        pos, pitch = position[mine], notes.pitch[mine]
        patterns[0].append(tuple(np.unique(pos)))
        patterns[1].append(tuple(zip(pos.tolist(), pitch.tolist())))
        patterns[2].append(tuple(zip(pos.tolist(), (pitch - pitch.min()).tolist())))
    shares = []
    for kind in patterns:
        counts = Counter(kind)
        shares.append(sum(counts[p] > 1 for p in kind) / len(kind))
    return shares


def bass_line(notes: Notes, length: float) -> np.ndarray:
    """The lowest pitch sounding in each quarter-note beat of [0, length); -1 where none."""
    beats = max(int(round(length)), 1)
    line = np.full(beats, -1, dtype=np.int64)
    for beat in range(beats):
        sounding = notes.pitch[(notes.onset < beat + 1 - EPSILON) & (notes.end > beat + EPSILON)]
        if len(sounding):
            line[beat] = sounding.min()
    return line


def bass_periodicity(line: Sequence[int] | np.ndarray) -> tuple[float, float]:
    """(match, autocorrelation) of a bass line at its best lag, 2 beats to half its length:
    the share of sounding beats equal to the beat `lag` earlier, and Pearson's correlation of
    the line with itself moved by `lag` (0 where it is undefined, as for a constant line)."""
    line = [int(v) for v in line]  # plain Python: numpy's overhead dominates on 16 beats
    match = correlation = 0.0
    for lag in range(2, len(line) // 2 + 1):
        pairs = [(a, b) for a, b in zip(line, line[lag:]) if a >= 0 and b >= 0]
        if len(pairs) < 2:
            continue
        match = max(match, sum(a == b for a, b in pairs) / len(pairs))
        correlation = max(correlation, _pearson(pairs))
    return match, correlation


def _pearson(pairs: list[tuple[int, int]]) -> float:
    """Pearson's correlation of the pairs' two members; 0 when either is constant."""
    count = len(pairs)
    mean_a = sum(a for a, _ in pairs) / count
    mean_b = sum(b for _, b in pairs) / count
    cov = sum((a - mean_a) * (b - mean_b) for a, b in pairs)
    var_a = sum((a - mean_a) ** 2 for a, _ in pairs)
    var_b = sum((b - mean_b) ** 2 for _, b in pairs)
    return cov / (var_a * var_b) ** 0.5 if var_a > 0 and var_b > 0 else 0.0


def _bass(notes: Notes, length: float) -> list[float]:
    return list(bass_periodicity(bass_line(notes, length)))


def piece_features(pieces: Sequence[Notes], bars: int = EXCERPT_BARS) -> list[np.ndarray]:
    """For each piece, its excerpts' features as one (excerpts, features) array."""
    out = []
    for notes in pieces:
        rows = [features(cut, edges) for cut, edges in excerpts(notes, bars)]
        out.append(np.stack(rows) if rows else np.zeros((0, len(FEATURE_NAMES))))
    return out
