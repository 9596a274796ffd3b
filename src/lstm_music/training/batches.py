"""Training batches for truncated BPTT: every position a target, windows inside one piece.

The batch has `lanes` rows. Each lane plays its pieces one after another, each piece framed
as <bos> tokens <eos> and cut into windows of `window` tokens; batch k holds window k of every
lane. The model's state is carried from one window to the next in a lane, and reset (`keep` = 0)
where a lane starts a new piece, so no window and no state ever crosses two pieces:

    lane 0: | A[0:T]   | A[T:2T]  | A[2T:]+pad | B[0:T]   | ...
    lane 1: | C[0:T]   | C[T:]+pad| D[0:T]    | D[T:2T]  | ...
              batch 0    batch 1    batch 2     batch 3
              keep 0,0   keep 1,1   keep 1,0    keep 0,1

Pieces are dealt in shuffled order, each to the lane with the fewest windows so far, so lanes
end nearly together.
The plan of an epoch depends only on (seed, epoch): a resumed run, or every rank of a
distributed run, rebuilds the same plan and takes its own lanes from it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lstm_music.corpus.store import BOS_ID, EOS_ID, PAD_ID

IGNORE = -100  # target value that the loss skips (padding)


@dataclass
class Batch:
    inputs: np.ndarray  # (lanes, window) int64 token ids
    targets: np.ndarray  # (lanes, window) int64, IGNORE where padded
    keep: np.ndarray  # (lanes,) float32: 1 = carry the state from the previous window, 0 = reset

    @property
    def tokens(self) -> int:
        return int((self.targets != IGNORE).sum())


@dataclass
class _Window:
    piece: int  # index into the piece list
    start: int  # offset in the framed piece (<bos> at 0)
    shift: int  # transposition in semitones


class EpochPlan:
    """Which window of which piece each lane plays in each batch of one epoch."""

    def __init__(
        self,
        lengths: list[int],
        lanes: int,
        window: int,
        seed: int,
        epoch: int,
        shifts: list[tuple[int, int]] | None = None,
    ) -> None:
        rng = np.random.default_rng([seed, epoch])
        order = rng.permutation(len(lengths))
        chosen = [rng.integers(low, high + 1) if high >= low else 0 for low, high in shifts or []]
        plans: list[list[_Window]] = [[] for _ in range(lanes)]
        for piece in order:  # shuffled, each onto the lane with the fewest windows so far
            lane = min(range(lanes), key=lambda i: len(plans[i]))
            framed = lengths[piece] + 1  # inputs are <bos> + tokens; targets are tokens + <eos>
            shift = int(chosen[piece]) if chosen else 0
            plans[lane] += [_Window(piece, s, shift) for s in range(0, framed, window)]
        self.plans, self.window = plans, window
        self.batches = max((len(plan) for plan in plans), default=0)

    def lane_windows(self, lane: int, batch: int) -> _Window | None:
        plan = self.plans[lane]
        return plan[batch] if batch < len(plan) else None


class Batcher:
    """Turns an `EpochPlan` into arrays for the lanes this process trains."""

    def __init__(
        self,
        pieces: list[np.ndarray],
        window: int,
        transpose_tables: dict[int, np.ndarray] | None = None,
    ) -> None:
        self.pieces, self.window = pieces, window
        self.tables = transpose_tables or {}

    def framed(self, piece: int, shift: int) -> np.ndarray:
        """<bos> tokens <eos>, transposed by `shift` semitones; shape (length + 2,)."""
        ids = np.asarray(self.pieces[piece], dtype=np.int64)
        if shift:
            ids = self.tables[shift][ids]
        return np.concatenate(([BOS_ID], ids, [EOS_ID]))

    def batch(self, plan: EpochPlan, index: int, lanes: range) -> Batch:
        inputs = np.full((len(lanes), self.window), PAD_ID, dtype=np.int64)
        targets = np.full((len(lanes), self.window), IGNORE, dtype=np.int64)
        keep = np.zeros(len(lanes), dtype=np.float32)
        for row, lane in enumerate(lanes):
            window = plan.lane_windows(lane, index)
            if window is None:
                continue
            framed = self.framed(window.piece, window.shift)
            chunk = framed[window.start : window.start + self.window + 1]
            inputs[row, : len(chunk) - 1] = chunk[:-1]
            targets[row, : len(chunk) - 1] = chunk[1:]
            keep[row] = float(window.start > 0)
        return Batch(inputs, targets, keep)


# the transposition of tokens lives in tokens/transpose.py; kept importable here for
# evaluation/likelihood.py until it imports from there
__all__ = ["IGNORE", "Batch", "Batcher", "EpochPlan"]
