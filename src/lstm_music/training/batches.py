"""Training batches for truncated BPTT: every batch full, no state carried across two pieces.

An epoch's pieces, in shuffled order, each framed as <bos> tokens <eos>, make one stream of
target positions. The stream is cut into `lanes` equal stretches, one per row of the batch, and
each stretch into `batches` windows, so every lane ends with the epoch and only the last lane's
tail can be padding:

    stream:  | A A A A A A A | B B B | C C C C C C C C C | D D D D D |
    lane 0:  | A A A A | A A A B |            (window = 4; `|` = a reset of the state)
    lane 1:  | B B C C | C C C C |
    lane 2:  | C C C D | D D D D |
               batch 0   batch 1

A long piece spans several lanes: a lane that starts inside a piece starts from a zero state,
as truncated BPTT over one long stream does. A window may hold the end of one piece and the
start of the next; `resets` marks where the next begins, and the model zeroes its state there,
so no state (and so no context) ever crosses two pieces. Every position of the stream is a
target exactly once per epoch.

Augmentation: each piece may be transposed (one shift per piece per epoch), its velocity
tokens moved by a level per piece and a jitter per token, its durations and onsets by a jitter
per note (tokens/velocity.py, tokens/onsets.py).
The window is the configured one, or shorter for a small corpus (the stretch of each lane is
split into windows of equal length), so that even a corpus of one short piece fills its batch.
The plan of an epoch depends only on (seed, epoch): a resumed run, or every rank of a
distributed run, rebuilds the same plan and takes its own lanes from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from lstm_music.corpus.store import BOS_ID, EOS_ID, PAD_ID
from lstm_music.tokens.onsets import OnsetAugment
from lstm_music.tokens.velocity import DurationAugment, VelocityAugment

IGNORE = -100  # target value that the loss skips (padding; tokens that are never targets)


@dataclass
class Batch:
    inputs: np.ndarray  # (lanes, window) int64 token ids
    targets: np.ndarray  # (lanes, window) int64, IGNORE where padded
    resets: np.ndarray  # (lanes, window) bool: True = the state is zeroed before this position

    @property
    def tokens(self) -> int:
        return int((self.targets != IGNORE).sum())


class EpochPlan:
    """Where in the epoch's stream of pieces each lane's window of each batch lies."""

    def __init__(
        self,
        lengths: list[int],
        lanes: int,
        window: int,
        seed: int,
        epoch: int,
        shifts: list[tuple[int, int]] | None = None,
        velocity_shift: int = 0,
    ) -> None:
        self.seed, self.epoch = seed, epoch
        rng = np.random.default_rng([seed, epoch])
        self.order = rng.permutation(len(lengths))  # pieces in stream order
        chosen = [rng.integers(low, high + 1) if high >= low else 0 for low, high in shifts or []]
        self.shifts = [int(chosen[piece]) if chosen else 0 for piece in self.order]
        levels = np.random.default_rng([seed, epoch, 1]).integers(  # its own stream: the order
            -velocity_shift,
            velocity_shift + 1,
            size=len(lengths),  # and shifts stay as they were
        )
        self.velocity_levels = [int(level) for level in levels]  # per stream index
        framed = np.array([lengths[piece] + 1 for piece in self.order], dtype=np.int64)
        self.starts = np.concatenate(([0], np.cumsum(framed)))  # stream offset of each piece
        self.total = int(self.starts[-1])  # target positions in the epoch
        self.lanes = lanes
        self.stretch = -(-self.total // lanes) if lanes else 0  # stream positions per lane
        self.batches = -(-self.stretch // window) if self.stretch else 0
        self.window = -(-self.stretch // self.batches) if self.batches else window

    @property
    def utilisation(self) -> float:
        """Share of the epoch's batch capacity (lanes x window x batches) holding real targets."""
        capacity = self.lanes * self.window * self.batches
        return self.total / capacity if capacity else 0.0

    def span(self, lane: int, batch: int) -> tuple[int, int]:
        """Stream positions [start, end) of one lane's window in batch `batch`."""
        begin = lane * self.stretch + batch * self.window
        end = min(begin + self.window, (lane + 1) * self.stretch, self.total)
        return begin, max(begin, end)

    def pieces_in(self, begin: int, end: int) -> list[tuple[int, int, int, int]]:
        """(stream index, piece offset from, to, column) for the pieces inside [begin, end)."""
        found: list[tuple[int, int, int, int]] = []
        index = int(np.searchsorted(self.starts, begin, side="right")) - 1
        position = begin
        while position < end:
            start, stop = int(self.starts[index]), int(self.starts[index + 1])
            upto = min(end, stop)
            found.append((index, position - start, upto - start, position - begin))
            position, index = upto, index + 1
        return found


class Batcher:
    """Turns an `EpochPlan` into arrays for the lanes this process trains."""

    def __init__(
        self,
        pieces: list[np.ndarray],
        window: int,
        transpose_tables: dict[int, np.ndarray] | None = None,
        velocity: VelocityAugment | None = None,
        inputs_only: np.ndarray | None = None,
        duration: DurationAugment | None = None,
        onset: OnsetAugment | None = None,
    ) -> None:
        """`inputs_only` (V,) bool: tokens the model reads but is never asked to predict (the
        attribute controls, which generation forces rather than samples)."""
        self.pieces, self.window = pieces, window
        self.tables = transpose_tables or {}
        self.velocity = velocity if velocity is not None and velocity.active else None
        self.duration = duration if duration is not None and duration.active else None
        self.onset = onset if onset is not None and onset.active else None
        self.inputs_only = inputs_only if inputs_only is not None and inputs_only.any() else None

    def framed(self, piece: int, shift: int, low: int = 0, high: int | None = None) -> np.ndarray:
        """[low:high] of <bos> tokens <eos>, transposed by `shift` semitones (only that slice is
        built: a long piece is visited a window at a time)."""
        ids = self.pieces[piece]
        length = len(ids)
        high = length + 2 if high is None else high
        inner = np.asarray(ids[max(low - 1, 0) : min(high - 1, length)], dtype=np.int64)
        if shift:
            inner = self.tables[shift][inner]
        head = [BOS_ID] if low == 0 else []
        tail = [EOS_ID] if high == length + 2 else []
        return np.concatenate((np.array(head, np.int64), inner, np.array(tail, np.int64)))

    def varied(self, plan: EpochPlan, stream_index: int, low: int, high: int) -> np.ndarray:
        """[low:high] of the framed piece at `stream_index` of the epoch, augmented. Each
        variation depends only on (seed, epoch, piece, position), so every window holding a
        position agrees on its token; onsets read a margin around the slice to keep that."""
        piece = int(plan.order[stream_index])
        begin, end = low, high
        if self.onset is not None:
            begin, end = self.onset.context(low, high, len(self.pieces[piece]) + 2)
        framed = self.framed(piece, plan.shifts[stream_index], begin, end)
        key = [plan.seed, plan.epoch, stream_index]
        if self.velocity is not None:
            framed = self.velocity.apply(framed, plan.velocity_levels[stream_index], key, begin)
        if self.duration is not None:
            framed = self.duration.apply(framed, 0, key, begin)
        if self.onset is not None:
            framed = self.onset.apply(framed, key, begin)
        return framed[low - begin : high - begin]

    def batch(self, plan: EpochPlan, index: int, lanes: range) -> Batch:
        inputs = np.full((len(lanes), plan.window), PAD_ID, dtype=np.int64)
        targets = np.full((len(lanes), plan.window), IGNORE, dtype=np.int64)
        resets = np.zeros((len(lanes), plan.window), dtype=bool)
        for row, lane in enumerate(lanes):
            begin, end = plan.span(lane, index)
            resets[row, 0] = index == 0  # a lane starts the epoch from a zero state
            for stream_index, low, high, column in plan.pieces_in(begin, end):
                framed = self.varied(plan, stream_index, low, high + 1)
                width = high - low
                inputs[row, column : column + width] = framed[:-1]
                targets[row, column : column + width] = framed[1:]
                resets[row, column] |= low == 0  # <bos>: a piece starts here
        if self.inputs_only is not None:
            real = targets != IGNORE
            targets[real & self.inputs_only[np.where(real, targets, 0)]] = IGNORE
        return Batch(inputs, targets, resets)


def make_batcher(
    train_ids: list[np.ndarray], vocabulary: list[str], tokenizer: Any, config: Any
) -> tuple[Batcher, list[tuple[int, int]] | None, list[str]]:
    """The batcher a `TrainConfig` asks for, the pieces' allowed transpositions (None: off) and
    notes for the user (augmentation asked that the corpus cannot have)."""
    from lstm_music.tokens.controls import control_mask
    from lstm_music.tokens.transpose import allowed_shifts, transpose_tables
    from lstm_music.training.settings import parse_transpose

    notes = []
    velocity = VelocityAugment(vocabulary, config.velocity_shift, config.velocity_jitter)
    if (config.velocity_shift or config.velocity_jitter) and not velocity.active:
        notes.append("this corpus's tokens have no velocities: velocity augmentation is off")
    duration = DurationAugment(vocabulary, config.duration_jitter)
    if config.duration_jitter and not duration.active:
        notes.append("this corpus's tokens have no durations: duration augmentation is off")
    onset = OnsetAugment(vocabulary, config.onset_jitter)
    if config.onset_jitter and not onset.active:
        notes.append("this corpus's tokens have no positions in a bar: onset augmentation is off")
    inputs_only = control_mask(vocabulary)
    low, high = parse_transpose(config.transpose)
    tables, shifts = None, None
    if (low, high) != (0, 0) and tokenizer.has_pitch:
        tables = transpose_tables(vocabulary, tokenizer, low, high)
        shifts = allowed_shifts(train_ids, tables, low, high)
    batcher = Batcher(train_ids, config.window, tables, velocity, inputs_only, duration, onset)
    return batcher, shifts, notes


__all__ = ["IGNORE", "Batch", "Batcher", "EpochPlan", "make_batcher"]
