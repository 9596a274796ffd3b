"""Velocity augmentation of token ids: louder, softer and less even playing of the same notes.

Collections converted from scores (chorales, fiddle tunes) play every note at one velocity, so
a model trained on them alone is sure of the next velocity token and pays dearly on a human
performance. Training can move a piece's velocity tokens by a random level and each note by a
small random jitter, in steps of the tokenizer's velocity bins. Here the tokens become ranks:
`ranks[id]` is the id's bin (or -1 for a token that is no velocity) and `ids[rank]` the id back.
"""

from __future__ import annotations

import re

import numpy as np

_VELOCITY = re.compile(r"^Velocity_(\d+)$")  # MidiTok's velocity tokens


def velocity_ranks(vocabulary: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(rank per id, -1 for other tokens; id per rank, softest first). Empty for a vocabulary
    without velocity tokens."""
    found = sorted(
        (int(match.group(1)), i)
        for i, token in enumerate(vocabulary)
        if (match := _VELOCITY.match(token))
    )
    ranks = np.full(len(vocabulary), -1, dtype=np.int64)
    for rank, (_, i) in enumerate(found):
        ranks[i] = rank
    return ranks, np.array([i for _, i in found], dtype=np.int64)


JITTER_BLOCK = 4096  # positions of a piece whose jitter one random stream draws


def vary_velocities(
    ids: np.ndarray, ranks: np.ndarray, by_rank: np.ndarray, level: int, jitter: np.ndarray
) -> np.ndarray:
    """`ids` with every velocity token moved `level` bins plus its own `jitter` (one value per
    position), kept inside the tokenizer's range; other tokens untouched."""
    if not len(by_rank):
        return ids
    rank = ranks[ids]
    where = rank >= 0
    moved = rank[where] + level + jitter[where]
    out = ids.copy()
    out[where] = by_rank[np.clip(moved, 0, len(by_rank) - 1)]
    return out


class VelocityAugment:
    """The training setting: a piece's level drawn from +-`shift` bins, each token +-`jitter`."""

    def __init__(self, vocabulary: list[str], shift: int, jitter: int) -> None:
        self.ranks, self.by_rank = velocity_ranks(vocabulary)
        self.shift, self.jitter = shift, jitter

    @property
    def active(self) -> bool:
        return bool(len(self.by_rank)) and bool(self.shift or self.jitter)

    def jitter_at(self, key: list[int], start: int, count: int) -> np.ndarray:
        """Per-position jitter for positions [start, start + count) of one piece in one epoch
        (`key`: seed, epoch, piece). Drawn a block of positions at a time from a stream of its
        own, so a position gets the same value in every window that holds it (the last target
        of one window is the first input of the next) and after a resume."""
        if not self.jitter or count <= 0:
            return np.zeros(max(count, 0), dtype=np.int64)
        first, last = start // JITTER_BLOCK, (start + count - 1) // JITTER_BLOCK
        blocks = [
            np.random.default_rng([*key, block]).integers(
                -self.jitter, self.jitter + 1, size=JITTER_BLOCK
            )
            for block in range(first, last + 1)
        ]
        offset = start - first * JITTER_BLOCK
        return np.concatenate(blocks)[offset : offset + count]

    def apply(self, ids: np.ndarray, level: int, key: list[int], start: int) -> np.ndarray:
        """`ids` (positions `start`... of the piece `key` names) with its velocities varied."""
        jitter = self.jitter_at(key, start, len(ids))
        return vary_velocities(ids, self.ranks, self.by_rank, level, jitter)
