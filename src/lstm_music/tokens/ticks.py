"""The span of a score's event times, for refusing files whose delta times overflow.

symusic counts ticks in 32-bit integers: a file whose delta times add up past 2^31 (each may be
up to 2^28 - 1, so eight or nine of them do) comes back with negative times, or with notes that
end past 2^31 - 1, which later arithmetic (symusic's `adjust_time` among it) cannot hold. No
music needs such times: 2^30 ticks are 13 days at 480 ticks per quarter and 120 quarters a
minute, and 39 hours at the finest SMPTE division.

Not caught: times that wrap all the way round (past 2^32) through events symusic does not keep
(SysEx, text), landing on small positive times again. Such a file reads with wrong timing, but
with nothing left to overflow.
"""

from __future__ import annotations

import numpy as np
import symusic

MAX_TICK = 2**30  # half of int32, so that sums and shifts of legal times still fit


def event_time_span(score: symusic.Score) -> tuple[int, int]:
    """(earliest, latest) tick of any event of `score`, notes and pedals counted to their end;
    (0, 0) for an empty score. Computed in 64 bits, so an overflowed time shows as negative or
    past 2^31 - 1 rather than wrapping again."""
    starts: list[np.ndarray] = []
    ends: list[np.ndarray] = []
    for events in (score.tempos, score.time_signatures, score.key_signatures):
        starts.append(events.numpy()["time"])
    starts.append(np.array([marker.time for marker in score.markers], dtype=np.int64))
    for track in score.tracks:
        for events in (track.notes, track.pedals):
            arrays = events.numpy()
            starts.append(arrays["time"])
            ends.append(arrays["time"].astype(np.int64) + arrays["duration"])
        for events in (track.controls, track.pitch_bends):
            starts.append(events.numpy()["time"])
        starts.append(np.array([lyric.time for lyric in track.lyrics], dtype=np.int64))
    times = [array.astype(np.int64) for array in starts + ends if len(array)]
    if not times:
        return 0, 0
    return min(int(t.min()) for t in times), max(int(t.max()) for t in times)
