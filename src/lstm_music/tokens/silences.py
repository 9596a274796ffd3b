"""Where a piece sounds, and the cut of long silences that timed tokenizers share.

A file whose notes are far apart (a huge delta time, or a track entering an hour late) would
otherwise become millions of empty-bar or time-shift tokens. The seed tokenizer cuts in whole
bars instead (`tokens.seed.silences`), from the same intervals.
"""

from __future__ import annotations

import numpy as np
import symusic


def sounding_intervals(score: symusic.Score) -> np.ndarray:
    """Merged (start, end) tick intervals during which at least one note sounds. Shape (K, 2)."""
    starts = [t.notes.numpy()["time"] for t in score.tracks]
    if not starts or sum(len(s) for s in starts) == 0:
        return np.zeros((0, 2), dtype=np.int64)
    start = np.concatenate(starts).astype(np.int64)
    end = start + np.concatenate([t.notes.numpy()["duration"] for t in score.tracks])
    order = np.argsort(start, kind="stable")
    start, end = start[order], np.maximum.accumulate(end[order])
    # a new interval begins where a note starts after everything before it has ended
    new = np.ones(len(start), dtype=bool)
    new[1:] = start[1:] > end[:-1]
    ends = np.append(end[np.flatnonzero(new)[1:] - 1], end[-1])
    return np.stack([start[new], ends], axis=1)


def cap_silences(score: symusic.Score, max_quarters: float) -> tuple[symusic.Score, int]:
    """Shorten leading silence to zero and every silence longer than `max_quarters` to it;
    the score and the ticks removed.

    A file whose notes are far apart (one huge delta time) otherwise becomes millions of
    empty-bar tokens. Times are remapped piecewise-linearly, so tempos and controls move too.
    """
    intervals = sounding_intervals(score)
    if len(intervals) == 0 or max_quarters <= 0:
        return score, 0
    cap = int(round(max_quarters * score.tpq))
    gaps = intervals[1:, 0] - intervals[:-1, 1]  # (K-1,) silence before each interval
    lead = int(intervals[0, 0])
    if lead == 0 and not (gaps > cap).any():
        return score, 0
    # control points of the time map: old tick -> new tick, strictly increasing
    old, new, shift = ([0, lead], [0, 0], lead) if lead > 0 else ([0], [0], 0)
    for k in np.flatnonzero(gaps > cap):
        gap_start, gap_end = int(intervals[k, 1]), int(intervals[k + 1, 0])
        old += [gap_start, gap_end]
        new += [gap_start - shift, gap_start - shift + cap]
        shift += gap_end - gap_start - cap
    last = max(int(intervals[-1, 1]), score.end()) + 1
    old.append(last)
    new.append(last - shift)
    return score.adjust_time(old, new), shift
