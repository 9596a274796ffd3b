"""Onset augmentation of REMI token ids: notes played a little before or after the beat.

Scores put every note exactly on its grid position; a played folder does not. Training can
move each onset (a `Position_k` token, which starts every note after it up to the next one) by
a small random number of position steps, each note group keeping its pitches, velocities and
durations. A move must keep the bar's order: a position may only move where no neighbour's own
move could meet or cross it (strictly more than `jitter` steps from each neighbouring position of
the bar), only earlier when it is the bar's first (the bar's length depends on its time
signature, so a last position never moves later), and never when a neighbour lies more than
`MARGIN` tokens away. That last rule makes each move depend only on the piece and the position,
so every window that holds a token agrees on it (see `OnsetAugment.context`).
"""

from __future__ import annotations

import numpy as np

from lstm_music.tokens.velocity import BinAugment

MARGIN = 512  # tokens searched each side for a neighbouring position (a chord of 128 notes fits)
BOUNDARIES = ("Bar_None", "<bos>", "<eos>")  # tokens that start or end a bar's run of positions


def move_onsets(
    ids: np.ndarray,
    ranks: tuple[np.ndarray, np.ndarray],
    boundary: np.ndarray,
    jitter: np.ndarray,
    reach: int,
) -> np.ndarray:
    """`ids` with each position token moved by its `jitter` where the rules above allow it.

    ranks: (V,) position step per id, -1 for other tokens, and the id of each step;
    boundary: (V,) bool, a bar's edge; jitter: (len(ids),) the drawn move per token;
    reach: the largest move any token may draw."""
    ranks, by_rank = ranks
    count = len(ids)
    index = np.arange(count)
    rank = ranks[ids]
    marks = (rank >= 0) | boundary[ids]
    before = np.maximum.accumulate(np.where(marks, index, -1))  # last mark at or before i
    after = np.minimum.accumulate(np.where(marks, index, count)[::-1])[::-1]  # first at or after
    where = np.flatnonzero(rank >= 0)
    prev = np.concatenate(([-1], before[:-1]))[where]  # the neighbour before each position
    nxt = np.concatenate((after[1:], [count]))[where]  # and after it
    near = (prev >= 0) & (where - prev <= MARGIN) & (nxt < count) & (nxt - where <= MARGIN)
    prev_rank = np.where(prev >= 0, rank[np.clip(prev, 0, None)], -1)
    next_rank = np.where(nxt < count, rank[np.clip(nxt, None, count - 1)], -1)
    low = np.where(prev_rank >= 0, prev_rank + reach + 1, 0)  # after a bar line: from 0
    high = np.where(next_rank >= 0, next_rank - reach - 1, rank[where])  # before one: no later
    moved = rank[where] + jitter[where]
    allowed = near & (moved >= low) & (moved <= high)
    out = ids.copy()
    out[where[allowed]] = by_rank[moved[allowed]]
    return out


class OnsetAugment:
    """The training setting: each onset moved up to `jitter` position steps, where allowed."""

    def __init__(self, vocabulary: list[str], jitter: int) -> None:
        self.draw = BinAugment(vocabulary, "position", 0, jitter, stream=[2])
        self.boundary = np.isin(np.array(vocabulary, dtype=object), BOUNDARIES)
        self.jitter = jitter

    @property
    def active(self) -> bool:
        return self.draw.active

    @staticmethod
    def context(low: int, high: int, length: int) -> tuple[int, int]:
        """The stretch of a piece (`length` positions) to read around [low, high) so that each
        position's neighbours within MARGIN are seen."""
        return max(low - MARGIN, 0), min(high + MARGIN, length)

    def apply(self, ids: np.ndarray, key: list[int], start: int) -> np.ndarray:
        """`ids` (positions `start`... of the piece `key` names) with its onsets moved."""
        jitter = self.draw.jitter_at(key, start, len(ids))
        return move_onsets(
            ids, (self.draw.ranks, self.draw.by_rank), self.boundary, jitter, self.jitter
        )


__all__ = ["MARGIN", "OnsetAugment", "move_onsets"]
