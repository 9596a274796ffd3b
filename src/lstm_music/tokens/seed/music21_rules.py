"""music21's reading of MIDI, emulated on symusic: the token rules behind the `seed` tokenizer.

The blog parses each MIDI file with music21 and keeps, in stream order, a pitch name (`C#4`,
`B-3`) for every note and the dotted normal order of the pitch classes (`0.4.7`) for every chord;
timing is dropped. To reproduce its token streams we emulate what music21 10.5 does on the way:
its MIDI note pairing, chord grouping (onsets closer than 1/4 quarter, ends within 1/4), the
quantisation to 1/4 and 1/3 of a quarter, measures, voices for overlapping notes (a measure's
voices are read one after the other) and ties at bar lines (a tied note is read once per bar).
`music21_parts` reads a score with these rules: a track as music21's part, several tracks as the
part that the seed's `partitionByInstrument` merges them into.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_right, insort
from collections.abc import Iterable
from functools import lru_cache

import numpy as np
import symusic

__all__ = ["CHORD_PATTERN", "UNIT", "normal_order", "parse_pitch_name", "pitch_name"]

_NAMES = ("C", "C#", "D", "E-", "E", "F", "F#", "G", "G#", "A", "B-", "B")
_STEPS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_PITCH_RE = re.compile(r"([A-Ga-g])([#b-]*)(\d+)")
_NEGATIVE_OCTAVE_RE = re.compile(r"([A-Ga-g])([#b-]*?)(-\d+)")
CHORD_PATTERN = re.compile(r"\d+(?:\.\d+)*")
UNIT = 48  # quantised time is counted in 1/48 quarter: both grids and all usual bars are whole
_DIVISORS = (4, 3)  # music21's default quarterLengthDivisors
_DRUM = -1  # the pitch of a drum note (no token)


def pitch_name(midi: int) -> str:
    """music21's default spelling with octave (`C#4`, `E-4`; middle C is `C4`)."""
    return f"{_NAMES[midi % 12]}{midi // 12 - 1}"


def parse_pitch_name(name: str) -> int | None:
    """The MIDI pitch of a music21-style name (`C4`, `E-4`, `F##3`, `Bb2`), or None.

    Octave -1 makes `-` ambiguous (music21 reads `C-1` as C flat 1): the reading that
    `pitch_name` would write wins, so its names parse back, except `E-1` and `B-1` (MIDI 4 and
    11), which it also writes for E flat 1 and B flat 1: those read as the flats.
    """
    candidates = []
    for pattern in (_PITCH_RE, _NEGATIVE_OCTAVE_RE):
        if match := pattern.fullmatch(name):
            letter, accidentals, octave = match.groups()
            shift = 2 * accidentals.count("#") - len(accidentals)
            midi = _STEPS[letter.upper()] + shift + 12 * (int(octave) + 1)
            if 0 <= midi <= 127:
                candidates.append(midi)
    exact = [midi for midi in candidates if pitch_name(midi) == name]
    return (exact or candidates or [None])[0]


@lru_cache(maxsize=4096)
def _normal_order_mask(mask: int) -> tuple[int, ...]:
    pcs = [p for p in range(12) if mask >> p & 1]
    rotations = [pcs[r:] + pcs[:r] for r in range(len(pcs))]
    # Forte: smallest span first, then the smallest intervals from the first note upwards;
    # min() keeps the first of equals, which starts on the lowest pitch class, as music21 does
    spans = [[(p - rot[0]) % 12 for p in rot] for rot in rotations]
    best = min(range(len(pcs)), key=lambda r: (spans[r][-1], *spans[r][1:-1]))
    return tuple(rotations[best])


def normal_order(pitch_classes: Iterable[int]) -> list[int]:
    """music21's `Chord.normalOrder`: Forte's normal order, ties to the lowest first pitch class."""
    mask = 0
    for pc in pitch_classes:
        mask |= 1 << (int(pc) % 12)
    return list(_normal_order_mask(mask)) if mask else []


# --- MIDI notes as music21 reads them ---------------------------------------------------------


def _music21_ends(track: symusic.Track) -> list[tuple[int, int, int]]:
    """(start, end, pitch) per note, with music21's note-off pairing.

    music21 ends every note-on at the next note-off of its pitch, so overlapping notes of one
    pitch both stop at the first release (symusic pairs them first-in, first-out).
    """
    notes = track.notes.numpy()
    if not len(notes["time"]):
        return []
    starts = notes["time"].astype(np.int64)
    pitches = notes["pitch"].astype(np.int64)
    ends = starts + notes["duration"]
    # one sorted axis of (pitch, end) keys: the next release of a pitch is a binary search away
    span = int(ends.max(initial=0)) + 1
    keys = np.sort(pitches * span + ends)
    found = np.searchsorted(keys, pitches * span + starts, side="right")
    following = keys[np.minimum(found, len(keys) - 1)] % span  # zero-length notes: unused
    ends = np.where(ends > starts, following, starts)
    return list(zip(starts.tolist(), ends.tolist(), pitches.tolist()))


def _group_chords(notes: list[tuple[int, int, int]], tpq: int) -> tuple[list[tuple], bool]:
    """music21's chord building: (onset, duration, token) elements and whether voices are needed.

    A chord takes the following notes that start less than 1/4 quarter after its first note and
    end within 1/4 quarter of it; a note that starts there but ends elsewhere asks for voices.
    As in music21 a later chord may take a note again, and a chord lasts as long as its last note.
    """
    tolerance = tpq / max(_DIVISORS)
    starts, ends, pitches = (list(column) for column in zip(*notes)) if notes else ([], [], [])
    # notes from i to window[i] - 1 start close enough to join note i's chord
    window = np.searchsorted(np.asarray(starts), np.asarray(starts) + tolerance).tolist()
    gathered = [False] * len(notes)
    elements, voices = [], False
    for i, start in enumerate(starts):
        if gathered[i]:
            continue
        end, members = ends[i], [i]
        for j in range(i + 1, window[i]):
            if abs(ends[j] - end) > tolerance:
                voices = True
            else:
                members.append(j)
                gathered[j] = True
        last = members[-1]
        token = _element_token(tuple(pitches[k] for k in members))
        elements.append((start, ends[last] - starts[last], token))
    return elements, voices


@lru_cache(maxsize=65536)
def _element_token(pitches: tuple[int, ...]) -> str | None:
    """A note's name or a chord's normal order; None for drums (music21 reads them unpitched).

    music21 drops a chord that holds a drum note; we keep its pitched notes instead.
    """
    pitched = [pitch for pitch in pitches if pitch != _DRUM]
    if not pitched:
        return None
    if len(pitched) == 1 and (len(pitches) == 1 or len(pitched) < len(pitches)):
        return pitch_name(pitched[0])
    return ".".join(str(pc) for pc in normal_order(pitched))


# --- quantisation (music21's Stream.quantize) --------------------------------------------------


def _nearest_multiple(value: float, step: float) -> tuple[float, float]:
    """music21's common.nearestMultiple: (match, rounded error); halves go down."""
    multiple = math.floor(value / step)
    low, high = step * multiple, step * (multiple + 1)
    if low <= value <= low + step / 2.0:
        return low, round(value - low, 7)
    return high, round(high - value, 7)


@lru_cache(maxsize=65536)
def _best_match(value: float, zero_allowed: bool = True, gap: int = 0) -> int:
    """music21's quantize bestMatch, in UNITs: the grid that fills the gap to the next onset
    wins, then the smaller error, then the 1/4 grid."""
    gap_ql = gap / UNIT
    found = []
    for divisor in _DIVISORS:
        step = 1 / divisor
        match, error = _nearest_multiple(value, step)
        if not zero_allowed and match == 0.0:
            match, error = step, abs(round(value - step, 7))
        remaining = 0.0 if gap_ql % step == 0 else max(gap_ql - match, 0.0)
        found.append((remaining, error, step, match))
    return round(min(found)[3] * UNIT)


def _quantize(elements: list[tuple], tpq: int, markers: list[int]) -> list[list]:
    """Quantised elements `[onset, is_not_grace, order, duration, token]`, in music21's order.

    A duration is snapped with a look-ahead to the next later onset of a note or a marker (time
    signature or key), as music21 does.
    """
    order = sorted(range(len(elements)), key=lambda i: (elements[i][0], elements[i][1] > 0, i))
    onsets = [_best_match(elements[i][0] / tpq) for i in order]
    next_onset: list[int | None] = [None] * len(order)
    for k in range(len(order) - 2, -1, -1):
        later = onsets[k + 1]
        next_onset[k] = later if later > onsets[k] else next_onset[k + 1]
    marker_onsets = [_best_match(tick / tpq) for tick in markers]
    out = []
    for k, i in enumerate(order):
        start, duration, token = elements[i]
        # a marker at the same tick sorts before the note, so only later ones count
        following = next_onset[k]
        first = bisect_right(marker_onsets, onsets[k], lo=bisect_right(markers, start))
        if first < len(marker_onsets) and (following is None or marker_onsets[first] < following):
            following = marker_onsets[first]
        gap = 0 if following is None else following - onsets[k]
        length = _best_match(duration / tpq, duration == 0, gap)
        out.append([onsets[k], int(duration > 0), k, length, token])
    out.sort()
    return out


# --- measures, voices and ties (music21's makeMeasures, makeVoices, makeTies) ---------------


class _Measure:
    """One bar: its elements `[offset, is_not_grace, order, duration, token]` (offsets within
    the bar), either flat or, once voices are made, in voices read one after the other.

    `stale` is the end music21 cached for the bar and `cached` that of each voice, or None where
    no cache is left: music21 lays the bars end to end by these (see `music21_parts`)."""

    __slots__ = ("start", "length", "flat", "voices", "cached", "stale")

    def __init__(self, start: int, length: int) -> None:
        self.start, self.length = start, length
        self.flat: list[list] = []
        self.voices: list[list[list]] | None = None
        self.cached: list[int | None] = []
        self.stale: int | None = None

    def elements(self) -> list[list]:
        """Elements in music21's `recurse()` order: whole voices first, then loose elements."""
        return [element for part in [*(self.voices or []), self.flat] for element in part]


def _bar_lengths(score: symusic.Score) -> list[tuple[int, int]]:
    """(quantised onset, bar length) of each time signature, with 4/4 from 0 when none is."""
    tpq, bars = score.tpq, []
    for signature in sorted(score.time_signatures, key=lambda ts: ts.time):
        length = round(4 * UNIT * signature.numerator / max(signature.denominator, 1))
        if length > 0:
            bars.append((_best_match(signature.time / tpq), length))
    if not bars or bars[0][0] > 0:
        bars.insert(0, (0, 4 * UNIT))
    return bars


def _make_measures(
    elements: list[list], bars: list[tuple[int, int]], markers: list[int]
) -> list[_Measure]:
    """Cut the elements into bars; a time signature takes effect at the next bar start.

    A marker (tempo, key or time signature) on a bar line at or after the last note's end is
    stored at the part's end, which makes music21 cache each bar's end (its notes still unsplit).
    """
    end = max((element[0] + element[3] for element in elements), default=0)
    bar_onsets = [onset for onset, _ in bars]
    measures: list[_Measure] = []
    start = 0
    while True:
        length = bars[bisect_right(bar_onsets, start) - 1][1]
        measures.append(_Measure(start, length))
        start += length
        if start >= end:
            break
    starts = [m.start for m in measures]
    for element in elements:  # a zero-length note at the very end goes to the last bar
        measure = measures[bisect_right(starts, element[0]) - 1]
        element[0] -= measure.start
        measure.flat.append(element)
    last = max(markers, default=-1)
    if last >= end and _on_bar_line(last, bars):
        for measure in measures:
            measure.stale = max((e[0] + e[3] for e in measure.flat), default=0)
    return measures


def _on_bar_line(time: int, bars: list[tuple[int, int]]) -> bool:
    """Whether a bar starts at `time` (bars laid from 0, as `_make_measures` lays them)."""
    bar_onsets, start = [onset for onset, _ in bars], 0
    while start < time:
        k = bisect_right(bar_onsets, start) - 1
        limit = min(time, bar_onsets[k + 1]) if k + 1 < len(bars) else time
        start += max(1, -(-(limit - start) // bars[k][1])) * bars[k][1]
    return start == time


def _voice_count(elements: list[list]) -> int:
    """music21's `getOverlaps` group size: how many voices makeVoices prepares."""
    spans = [(e[0], e[0] + e[3]) for e in elements]
    overlaps: list[list[int]] = [[] for _ in spans]
    for i, span in enumerate(spans):
        for j in range(i + 1, len(spans)):
            first, second = (span, spans[j]) if span <= spans[j] else (spans[j], span)
            if second[0] >= first[1]:
                break  # music21 stops at the first element that does not overlap
            overlaps[i].append(j)
            overlaps[j].append(i)
    # consolidate as music21 does: a note joins the group of an overlapping note seen earlier
    groups: dict[int, list[int]] = {}
    home: dict[int, int] = {}
    for i, others in enumerate(overlaps):
        key = None
        for j in [*others, i] if others else []:  # `others` is already in index order
            if j in home:
                key = home[j]
                continue
            key = spans[i][0] if key is None else key
            groups.setdefault(key, []).append(j)
            home[j] = key
    return max([len(group) for group in groups.values()] + [1])


def _make_voices(measure: _Measure) -> None:
    """Put overlapping notes of a bar in voices: each note goes to the first free voice.

    music21 caches the end of a voice when it looks for room in it and when it puts a later
    voice into the bar (measuring the bar), so all voices but the last have their end cached.
    """
    count = _voice_count(measure.flat)
    if count == 1:
        return
    voices: list[list[list]] = [[] for _ in range(count)]
    ends = [0] * count
    looked = [False] * count  # whether music21 looked at the voice since a note went in
    for element in measure.flat:
        free = next((k for k in range(count) if ends[k] <= element[0]), None)
        checked = count if free is None else free + 1
        looked[:checked] = [True] * checked
        if free is None:  # music21 would drop the note; keep it in a voice of its own
            voices.append([])
            ends.append(0)
            looked.append(False)
            free = len(voices) - 1
        voices[free].append(element)
        ends[free] = max(ends[free], element[0] + element[3])
        looked[free] = False
    kept = [k for k, voice in enumerate(voices) if voice]
    measure.voices = [voices[k] for k in kept]
    measure.cached = [ends[k] if looked[k] or k != kept[-1] else None for k in kept]
    measure.flat, measure.stale = [], None


def _make_ties(measures: list[_Measure], bars: list[tuple[int, int]]) -> None:
    """Split elements that cross a bar line, the rest going to the next bar at offset 0.

    Like music21: from a bar with voices the rest lands beside the next bar's voices (and is not
    split again), or in the next bar's first voice when that bar has none. Putting a note in a
    bar or voice, or splitting one of its notes, clears its cached end; splitting a chord does not.
    """
    bar_onsets = [onset for onset, _ in bars]
    order = 1 << 40  # a remainder sorts after what is already at its offset
    index = 0
    while index < len(measures):
        measure = measures[index]
        next_had_voices = index + 1 < len(measures) and measures[index + 1].voices is not None
        parts = measure.voices if measure.voices is not None else [measure.flat]
        for voice, part in enumerate(parts):
            for element in list(part):
                overshoot = element[0] + element[3] - measure.length
                if overshoot <= 0 or element[0] >= measure.length:
                    continue
                if index + 1 == len(measures):
                    start = measure.start + measure.length
                    measures.append(_Measure(start, bars[bisect_right(bar_onsets, start) - 1][1]))
                following = measures[index + 1]
                element[3] -= overshoot
                if not CHORD_PATTERN.fullmatch(element[4] or ""):
                    measure.stale = None
                    if measure.voices is not None:
                        measure.cached[voice] = None
                order += 1
                remainder = [0, 1, order, overshoot, element[4]]
                if next_had_voices:
                    target = following.flat if measure.voices is not None else following.voices[0]
                elif measure.voices is not None:
                    if following.voices is None:
                        following.voices, following.flat = [following.flat], []
                        following.cached = [None]
                    target = following.voices[0]
                else:
                    target = following.flat
                if target is not following.flat:
                    following.cached[0] = None
                following.stale = None
                insort(target, remainder)
        index += 1
    for measure in measures:
        if measure.voices is not None:
            kept = [k for k, voice in enumerate(measure.voices) if voice]
            if len(kept) < len(measure.voices):
                measure.stale = None
            measure.voices = [measure.voices[k] for k in kept]
            measure.cached = [measure.cached[k] for k in kept]
            if len(measure.voices) == 1:  # flattenUnnecessaryVoices
                measure.flat, measure.voices = measure.voices[0] + measure.flat, None
