"""Musical statistics of pieces after Yang & Lerch (2018), and the overlap of two sets of them.

"On the evaluation of generative models in music" (Yang & Lerch, Neural Computing and
Applications, 2018) judges generated music by comparing the distributions of simple features
(pitch-class histogram, pitch range, inter-onset intervals, note lengths, ...) over the
generated set with those over the training data, through the overlapping area of the two
distributions. Ours, per piece:

    pitch_class    12-bin pitch-class histogram, normalised
    pitch_range    highest minus lowest pitch, in semitones
    notes_per_bar  onsets in each bar (bars of 4 quarters unless the score has time signatures)
    ioi            time between consecutive distinct onsets (a chord is one onset), in quarters
    note_length    each note's duration, in quarters
    polyphony      notes sounding at each distinct onset (a note sounds on [start, end))

Overlap: Yang & Lerch smooth each distribution with a Gaussian kernel density estimate and take
the overlapping area of the two PDFs. We use **histograms on common bins** instead: every
statistic here is discrete (pitch classes, semitones, note counts) or lives on a musical time
grid, so exact bins lose nothing, need no bandwidth, and give sum_b min(p_b, q_b), which is 1
for identical distributions and 0 for disjoint ones. Times are binned on a log scale with 12
bins per doubling centred on powers of two: as log2(3) is close to 19/12, triplets, dotted and
plain values (1/3, 1/2, 3/4, 1, 3/2, ...) all land near a bin centre, never on an edge. A set's
distribution is the mean of its pieces' normalised histograms, so every piece weighs the same
however long it is.

Inside the held-out spread: one yardstick figure (valid vs train) does not say how much the
overlap of a set varies by chance, and a set's overlap grows with its size (averaging smooths
the histogram). So we draw, 200 times, as many held-out (valid) pieces as there are generated
ones, with replacement, and take the 5th to 95th percentile of their overlap with the train
pieces: the *spread*. A statistic is *inside* when the generated pieces' overlap with the train
pieces is at least the spread's low end: they are no further from the training music than real
music the model never saw. Above the spread counts as inside (closer to the training music:
the copy check says whether that is copying).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import symusic

DEFAULT_METER = ((0.0, 4.0),)  # (start, bar length) in quarters: 4/4 from the beginning
LOG_BINS = 12  # bins per doubling of a time value
PITCH_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
EPSILON = 1e-9  # slack for float comparisons of quarter-note times made from integer ticks
SPREAD_DRAWS = 200  # random held-out sets drawn for the spread (see the module docstring)
SPREAD_PERCENTILES = (5.0, 95.0)


@dataclass(frozen=True)
class Notes:
    """A piece as note events sorted by onset, then pitch; times in quarter notes."""

    onset: np.ndarray  # (n,) float64
    end: np.ndarray  # (n,) float64, onset + duration
    pitch: np.ndarray  # (n,) int64
    meters: tuple[tuple[float, float], ...] = DEFAULT_METER  # (start, bar length) in quarters
    velocity: np.ndarray | None = None  # (n,) int64 when known (the listening test uses it)

    def __len__(self) -> int:
        return len(self.pitch)

    @property
    def duration(self) -> np.ndarray:
        return self.end - self.onset


def notes_of(score: symusic.Score) -> Notes:
    """The notes of every track of a score (ticks) as one sorted event list."""
    arrays = [track.notes.numpy() for track in score.tracks]
    if not arrays:
        return Notes(np.zeros(0), np.zeros(0), np.zeros(0, dtype=np.int64))
    time = np.concatenate([a["time"] for a in arrays]).astype(np.int64)
    end = time + np.concatenate([a["duration"] for a in arrays]).astype(np.int64)
    pitch = np.concatenate([a["pitch"] for a in arrays]).astype(np.int64)
    velocity = np.concatenate([a["velocity"] for a in arrays]).astype(np.int64)
    order = np.lexsort((pitch, time))
    tpq = float(score.tpq)
    meters = _meters(score, tpq)
    return Notes(time[order] / tpq, end[order] / tpq, pitch[order], meters, velocity[order])


def _meters(score: symusic.Score, tpq: float) -> tuple[tuple[float, float], ...]:
    """(start, bar length) in quarters from the time signatures; 4/4 where there are none."""
    meters: dict[float, float] = {}
    for signature in sorted(score.time_signatures, key=lambda s: s.time):
        if signature.numerator > 0 and signature.denominator > 0:
            meters[signature.time / tpq] = signature.numerator * 4.0 / signature.denominator
    if not meters or min(meters) > 0:
        meters.setdefault(0.0, 4.0)
    return tuple(sorted(meters.items()))


def bar_numbers(notes: Notes) -> np.ndarray:
    """The bar of each onset; a time signature change starts a new bar, as in MIDI files."""
    starts = np.array([m[0] for m in notes.meters])
    lengths = np.array([m[1] for m in notes.meters])
    bars_in_segment = np.ceil(np.diff(starts) / lengths[:-1] - EPSILON)
    first_bar = np.concatenate([[0.0], np.cumsum(bars_in_segment)])
    segment = np.searchsorted(starts, notes.onset + EPSILON, side="right") - 1
    within = np.floor((notes.onset - starts[segment]) / lengths[segment] + EPSILON)
    return (first_bar[segment] + within).astype(np.int64)


def pitch_classes(notes: Notes) -> np.ndarray:
    return notes.pitch % 12


def pitch_range(notes: Notes) -> np.ndarray:
    return np.array([np.ptp(notes.pitch)]) if len(notes) else np.zeros(0, dtype=np.int64)


def notes_per_bar(notes: Notes) -> np.ndarray:
    """Onsets per bar, from the first note's bar to the last's (empty bars count 0)."""
    if not len(notes):
        return np.zeros(0, dtype=np.int64)
    bars = bar_numbers(notes)
    return np.bincount(bars - bars.min())


def inter_onset_intervals(notes: Notes) -> np.ndarray:
    return np.diff(_distinct(notes.onset))


def note_lengths(notes: Notes) -> np.ndarray:
    return notes.duration


def polyphony(notes: Notes) -> np.ndarray:
    """Notes sounding at each distinct onset: started by then minus ended by then."""
    onsets = _distinct(notes.onset)
    started = np.searchsorted(notes.onset, onsets + EPSILON, side="right")
    ended = np.searchsorted(np.sort(notes.end), onsets + EPSILON, side="right")
    return started - ended


def _distinct(times: np.ndarray) -> np.ndarray:
    """Sorted times with near-equal ones (float noise) merged."""
    if not len(times):
        return times
    times = np.sort(times)
    return times[np.concatenate([[True], np.diff(times) > EPSILON])]


@dataclass(frozen=True)
class Statistic:
    """One feature: how to measure it on a piece and how to bin its values."""

    name: str
    title: str
    unit: str
    binning: str  # "class" (pitch classes), "integer" or "log" (12 bins per doubling)
    measure: Callable[[Notes], np.ndarray] = field(repr=False)

    def bins(self, values: np.ndarray) -> np.ndarray:
        if self.binning == "log":
            values = values[values > EPSILON]
            return np.round(LOG_BINS * np.log2(values)).astype(np.int64)
        return np.round(values).astype(np.int64)

    def label(self, bin_id: int) -> str:
        if self.binning == "class":
            return PITCH_NAMES[bin_id % 12]
        if self.binning == "log":
            return _musical(2 ** (bin_id / LOG_BINS))
        return str(bin_id)


def _musical(value: float) -> str:
    """A time in quarters as a note-value fraction (3/2, 1/3) when it is one, else a decimal."""
    for denominator in (1, 2, 3, 4, 6, 8) if value < 3 else (1,):
        numerator = round(value * denominator)
        if numerator and abs(numerator / denominator - value) < 0.01 * value:
            divisor = math.gcd(numerator, denominator)
            numerator, denominator = numerator // divisor, denominator // divisor
            return str(numerator) if denominator == 1 else f"{numerator}/{denominator}"
    return f"{value:.2g}"


STATISTICS = (
    Statistic("pitch_class", "pitch-class histogram", "pitch class", "class", pitch_classes),
    Statistic("pitch_range", "pitch range", "semitones", "integer", pitch_range),
    Statistic("notes_per_bar", "notes per bar", "notes", "integer", notes_per_bar),
    Statistic("ioi", "inter-onset interval", "quarter notes", "log", inter_onset_intervals),
    Statistic("note_length", "note length", "quarter notes", "log", note_lengths),
    Statistic("polyphony", "polyphony at onsets", "notes sounding", "integer", polyphony),
)


@dataclass(frozen=True)
class Distribution:
    """A set's histogram of one statistic: probs[i] belongs to bin `first + i`."""

    first: int
    probs: np.ndarray
    mean: float | None  # mean over pieces of each piece's mean value (None: pitch classes)
    pieces: int  # pieces that had at least one value


def distribution(statistic: Statistic, pieces: Sequence[Notes]) -> Distribution:
    """Mean of the pieces' normalised histograms (each piece weighs the same)."""
    bins, weights, means = [], [], []
    for notes in pieces:
        values = statistic.measure(notes)
        ids = statistic.bins(values)
        if len(ids):
            bins.append(ids)
            weights.append(np.full(len(ids), 1.0 / len(ids)))
            means.append(float(np.mean(values)))
    if not bins:
        return Distribution(0, np.zeros(0), None, 0)
    if statistic.binning == "class":
        first, ids = 0, np.concatenate(bins)
    else:
        ids = np.concatenate(bins)
        first = int(ids.min())
    probs = np.bincount(ids - first, np.concatenate(weights)) / len(bins)
    if statistic.binning == "class":
        probs = np.pad(probs, (0, 12 - len(probs)))
    mean = None if statistic.binning == "class" else float(np.mean(means))
    return Distribution(first, probs, mean, len(bins))


def aligned(a: Distribution, b: Distribution) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bin ids covering both distributions (a contiguous range) and both on those bins."""
    bins, (p, q) = _on_common_bins([a, b])
    return bins, p, q


def _on_common_bins(dists: Sequence[Distribution]) -> tuple[np.ndarray, list[np.ndarray]]:
    """The contiguous bin ids covering every distribution, and each one's probs on them."""
    ends = [(d.first, d.first + len(d.probs)) for d in dists if d.pieces]
    if not ends:
        return np.zeros(0, dtype=np.int64), [np.zeros(0) for _ in dists]
    low, high = min(e[0] for e in ends), max(e[1] for e in ends)
    out = []
    for d in dists:
        probs = np.zeros(high - low)
        if d.pieces:
            probs[d.first - low : d.first - low + len(d.probs)] = d.probs
        out.append(probs)
    return np.arange(low, high), out


def overlap(a: Distribution, b: Distribution) -> float | None:
    """Shared area of two histograms on common bins: 1 identical, 0 disjoint; None if empty."""
    if not a.pieces or not b.pieces:
        return None
    _, p, q = aligned(a, b)
    return float(min(1.0, np.minimum(p, q).sum()))


def held_out_spread(
    statistic: Statistic, held_out: Sequence[Notes], train: Distribution, size: int
) -> tuple[float, float] | None:
    """The spread of the overlap with `train` of `size` held-out pieces drawn at random.

    5th and 95th percentile over SPREAD_DRAWS draws with replacement (seeded: the same inputs
    give the same spread); None without held-out pieces that have this statistic.
    """
    pieces = [d for d in (distribution(statistic, [notes]) for notes in held_out) if d.pieces]
    if not pieces or not train.pieces or size < 1:
        return None
    _, (*rows, target) = _on_common_bins([*pieces, train])
    rng = np.random.default_rng(0)
    counts = rng.multinomial(size, np.full(len(rows), 1 / len(rows)), size=SPREAD_DRAWS)
    draws = counts @ np.stack(rows) / size  # each draw's set distribution, one per row
    overlaps = np.minimum(draws, target).sum(axis=1).clip(max=1.0)
    low, high = np.percentile(overlaps, SPREAD_PERCENTILES)
    return float(low), float(high)


@dataclass(frozen=True)
class StatComparison:
    """One statistic: generated vs reference, and the valid-vs-train overlap as a yardstick.

    `spread` and `versus_train` (the generated pieces' overlap with the train pieces) place the
    generated pieces against held-out music; see the module docstring for `inside`.
    """

    statistic: Statistic
    generated: Distribution
    reference: Distribution
    overlap: float | None
    yardstick: float | None
    spread: tuple[float, float] | None = None
    versus_train: float | None = None

    @property
    def inside(self) -> bool | None:
        """Generated-vs-train overlap at least the spread's low end; None when not judged."""
        if self.spread is None or self.versus_train is None:
            return None
        return self.versus_train >= self.spread[0]

    def to_dict(self) -> dict:
        bins, generated, reference = aligned(self.generated, self.reference)
        return {
            "name": self.statistic.name,
            "title": self.statistic.title,
            "unit": self.statistic.unit,
            "generated_mean": self.generated.mean,
            "reference_mean": self.reference.mean,
            "overlap": self.overlap,
            "valid_vs_train": self.yardstick,
            "spread": None if self.spread is None else [round(v, 6) for v in self.spread],
            "versus_train": self.versus_train,
            "inside": self.inside,
            "bins": [self.statistic.label(int(b)) for b in bins],
            "generated": [round(float(p), 6) for p in generated],
            "reference": [round(float(p), 6) for p in reference],
        }


def compare_statistics(
    generated: Sequence[Notes],
    reference: Sequence[Notes],
    valid: Sequence[Notes] = (),
    train: Sequence[Notes] = (),
) -> list[StatComparison]:
    """Every statistic's overlap generated-vs-reference and, given valid and train pieces, the
    valid-vs-train yardstick, its spread and the generated-vs-train overlap judged against it."""
    results = []
    for statistic in STATISTICS:
        ours, theirs = distribution(statistic, generated), distribution(statistic, reference)
        yardstick = spread = versus_train = None
        if valid and train:
            trained = distribution(statistic, train)
            yardstick = overlap(distribution(statistic, valid), trained)
            spread = held_out_spread(statistic, valid, trained, ours.pieces)
            versus_train = overlap(ours, trained)
        results.append(
            StatComparison(
                statistic, ours, theirs, overlap(ours, theirs), yardstick, spread, versus_train
            )
        )
    return results
