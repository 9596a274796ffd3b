"""Velocity and duration augmentation of token ids: the same notes played less evenly.

Collections converted from scores (chorales, fiddle tunes, piano scores) play every note at one
velocity and hold it for exactly its written value, so a model trained on them alone is sure of
the next velocity or duration token and pays dearly on a human performance. Training can move a
piece's velocity tokens by a random level and each note by a small random jitter, in steps of
the tokenizer's velocity bins, and each note's duration by a jitter in steps of its duration
bins (a written quarter held a little shorter or longer). Here the tokens become ranks:
`ranks[id]` is the id's bin (or -1 for a token of another family) and `ids[rank]` the id back.
"""

from __future__ import annotations

import re

import numpy as np

_VELOCITY = re.compile(r"^Velocity_(\d+)$")  # MidiTok's velocity tokens
_DURATION = re.compile(r"^Duration_(\d+)\.(\d+)\.(\d+)$")  # beats.ticks.ticks-per-beat
_POSITION = re.compile(r"^Position_(\d+)$")  # REMI's onset within a bar, in grid steps


def _velocity_value(token: str) -> float | None:
    match = _VELOCITY.match(token)
    return int(match.group(1)) if match else None


def _duration_value(token: str) -> float | None:
    """Beats of a MidiTok duration token ("Duration_1.2.8" = 1 + 2/8 beats)."""
    match = _DURATION.match(token)
    if not match or int(match.group(3)) == 0:
        return None
    return int(match.group(1)) + int(match.group(2)) / int(match.group(3))


def _position_value(token: str) -> float | None:
    match = _POSITION.match(token)
    return int(match.group(1)) if match else None


FAMILIES = {"velocity": _velocity_value, "duration": _duration_value, "position": _position_value}


def velocity_ranks(vocabulary: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(rank per id, -1 for other tokens; id per rank, softest first). Empty for a vocabulary
    without velocity tokens."""
    return token_ranks(vocabulary, "velocity")


def token_ranks(vocabulary: list[str], family: str) -> tuple[np.ndarray, np.ndarray]:
    """(rank per id, -1 for tokens of other families; id per rank, smallest value first)."""
    value = FAMILIES[family]
    found = sorted(
        (number, i) for i, token in enumerate(vocabulary) if (number := value(token)) is not None
    )
    ranks = np.full(len(vocabulary), -1, dtype=np.int64)
    for rank, (_, i) in enumerate(found):
        ranks[i] = rank
    return ranks, np.array([i for _, i in found], dtype=np.int64)


JITTER_BLOCK = 4096  # positions of a piece whose jitter one random stream draws


def move_bins(
    ids: np.ndarray, ranks: np.ndarray, by_rank: np.ndarray, level: int, jitter: np.ndarray
) -> np.ndarray:
    """`ids` with every token of the family (`ranks` >= 0) moved `level` bins plus its own
    `jitter` (one value per position), kept inside the tokenizer's range; others untouched."""
    if not len(by_rank):
        return ids
    rank = ranks[ids]
    where = rank >= 0
    moved = rank[where] + level + jitter[where]
    out = ids.copy()
    out[where] = by_rank[np.clip(moved, 0, len(by_rank) - 1)]
    return out


class BinAugment:
    """The training setting for one family of tokens: a piece's level drawn from +-`shift`
    bins, each token +-`jitter`; `stream` tells the families' random draws apart."""

    def __init__(
        self, vocabulary: list[str], family: str, shift: int, jitter: int, stream: list[int]
    ) -> None:
        self.ranks, self.by_rank = token_ranks(vocabulary, family)
        self.shift, self.jitter, self.stream = shift, jitter, stream

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
            np.random.default_rng([*key, *self.stream, block]).integers(
                -self.jitter, self.jitter + 1, size=JITTER_BLOCK
            )
            for block in range(first, last + 1)
        ]
        offset = start - first * JITTER_BLOCK
        return np.concatenate(blocks)[offset : offset + count]

    def apply(self, ids: np.ndarray, level: int, key: list[int], start: int) -> np.ndarray:
        """`ids` (positions `start`... of the piece `key` names) with its family's tokens varied."""
        jitter = self.jitter_at(key, start, len(ids))
        return move_bins(ids, self.ranks, self.by_rank, level, jitter)


class VelocityAugment(BinAugment):
    """Velocities: a level per piece (+-`shift` bins) and a jitter per note (+-`jitter`)."""

    def __init__(self, vocabulary: list[str], shift: int, jitter: int) -> None:
        super().__init__(vocabulary, "velocity", shift, jitter, stream=[])


class DurationAugment(BinAugment):
    """Durations: each note held up to `jitter` bins shorter or longer (no level per piece: a
    piece played all longer is another tempo, which the tokens do not see)."""

    def __init__(self, vocabulary: list[str], jitter: int) -> None:
        super().__init__(vocabulary, "duration", 0, jitter, stream=[1])
