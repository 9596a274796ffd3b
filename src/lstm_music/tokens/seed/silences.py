"""Shortening silences without moving music21's bar grid: the `seed` pieces' silence cap.

music21 reads notes bar by bar (ties at bar lines, voices per bar) and quantises onsets to 1/4
and 1/3 of a quarter, so the seed's tokens depend on where each note falls in its bar. The
timed tokenizers' cap (`tokens.silences.cap_silences`) cuts the leading silence to nothing and a
long gap to exactly `max_silence`: for a track that enters after a bar and a half, or after a
gap of 9.5 quarters, every later note moves against the bar lines and its tokens change. Here a
cut is a whole number of bars that is also a whole number of quarters (a period of both grids),
from a bar line where the bars no longer change (after the last time signature), so every note
keeps its place in its bar, every bar its notes, and the tokens stay music21's. A gap then
shrinks to less than `max_silence` plus a bar and a period (plus what lies before a time
signature inside it); where that leaves more than `FALLBACK_QUARTERS` over `max_silence` (a
crafted file) it is cut as the timed cap cuts it.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from fractions import Fraction

import symusic

from lstm_music.tokens.seed.music21_rules import UNIT, _bar_lengths, _best_match
from lstm_music.tokens.silences import sounding_intervals

__all__ = ["FALLBACK_QUARTERS", "cap_silences_in_bars"]

FALLBACK_QUARTERS = 256  # a silence still longer than max_silence + this is cut off the grid
MAX_PERIOD_QUARTERS = 64  # longer periods (bars of 255/1, of 1/1024 quarter) are not kept


def cap_silences_in_bars(score: symusic.Score, max_quarters: float) -> tuple[symusic.Score, int]:
    """The score with its leading silence and the gaps over `max_quarters` shortened in whole
    bars, and the ticks removed. `max_quarters` 0 leaves it as it is, as the timed cap does."""
    intervals = sounding_intervals(score)
    if len(intervals) == 0 or max_quarters <= 0:
        return score, 0
    tpq = score.tpq
    silences = [(0, int(intervals[0, 0]), 0.0)]  # the lead goes as far as the grid allows
    silences += [
        (int(end), int(start), max_quarters)
        for end, start in zip(intervals[:-1, 1], intervals[1:, 0])
        if start - end > max_quarters * tpq
    ]
    grid = _Grid(score)
    old, new, shift = [0], [0], 0
    for begin, stop, keep in silences:
        start, cut = grid.whole_bars(begin, stop, keep)
        if Fraction(stop - begin - cut, tpq) > keep + FALLBACK_QUARTERS:  # off the grid
            start, cut = begin, stop - begin - round(keep * tpq)
            points = [(start, start - shift), (stop, start - shift + round(keep * tpq))]
        elif cut:
            points = [(start, start - shift), (start + cut, start - shift)]
        else:
            continue
        for before, after in points:
            if before > old[-1]:
                old.append(before)
                new.append(after)
        shift += cut
    if not shift:
        return score, 0
    last = max(int(intervals[-1, 1]), score.end()) + 1
    old.append(last)
    new.append(last - shift)
    return score.adjust_time(old, new), shift


class _Grid:
    """music21's bar lines as `music21_rules` lays them (a time signature takes effect at the
    next bar line): the bar lines where the bar length changes, in UNITs, and the time
    signatures' ticks."""

    def __init__(self, score: symusic.Score) -> None:
        self.tpq, bars = score.tpq, _bar_lengths(score)
        self.signatures = sorted(signature.time for signature in score.time_signatures)
        onsets = [onset for onset, _ in bars]
        self.changes: list[int] = []  # bar lines where a length takes over
        self.lengths: list[int] = []
        start = 0
        while True:
            k = bisect_right(onsets, start) - 1
            self.changes.append(start)
            self.lengths.append(bars[k][1])
            if k + 1 == len(bars):
                break
            start += -(-(onsets[k + 1] - start) // bars[k][1]) * bars[k][1]

    def whole_bars(self, begin: int, stop: int, keep: float) -> tuple[int, int]:
        """Where to cut the silence `begin`..`stop` and how much (ticks): whole bars from the
        first bar line after the last change of bar length, in whole periods, `keep` quarters
        left. A cut of 0 where no period fits."""
        # a signature where the music resumes moves with it; an earlier one takes effect at a
        # bar line, from where the bars are all alike
        earlier = bisect_left(self.signatures, stop)
        last = self.signatures[earlier - 1] if earlier else 0
        settled = self._bar_line(_best_match(last / self.tpq))
        start = self._bar_line(max(math.ceil(max(begin, last) * UNIT / self.tpq), settled))
        bar = Fraction(self.lengths[bisect_right(self.changes, settled) - 1], UNIT)
        period = bar * bar.denominator  # the fewest whole bars that are whole quarters
        if period > MAX_PERIOD_QUARTERS:
            return begin, 0
        start_tick = math.ceil(start * self.tpq / UNIT)  # nothing sounds from the bar line on
        room = Fraction(stop - start_tick, self.tpq) - Fraction(keep)
        cut = int(max(math.floor(room / period), 0) * period * self.tpq)
        return start_tick, cut

    def _bar_line(self, target: int) -> int:
        """The first bar line at or after `target` (UNITs)."""
        k = bisect_right(self.changes, target) - 1
        length = self.lengths[k]
        return self.changes[k] + -(-(target - self.changes[k]) // length) * length
