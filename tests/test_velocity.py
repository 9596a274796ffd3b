"""Velocity augmentation: only velocity tokens move, inside the tokenizer's range, the same way
after a resume."""

from __future__ import annotations

import numpy as np

from lstm_music.tokens.velocity import VelocityAugment, velocity_ranks
from lstm_music.training.batches import Batcher, EpochPlan

VOCABULARY = ["<pad>", "<bos>", "<eos>", "Bar_None", "Pitch_60", "Velocity_3", "Velocity_7",
              "Velocity_11", "Velocity_15", "Duration_1.0.8"]  # fmt: skip


def test_ranks_follow_the_velocity_values() -> None:
    ranks, by_rank = velocity_ranks(["Velocity_11", "Pitch_60", "Velocity_3"])
    assert ranks.tolist() == [1, -1, 0] and by_rank.tolist() == [2, 0]
    assert len(velocity_ranks(["Pitch_60"])[1]) == 0


def test_only_velocities_move_and_stay_in_range() -> None:
    augment = VelocityAugment(VOCABULARY, shift=2, jitter=1)
    ids = np.array([1, 3, 4, 6, 9, 4, 7, 9, 2] * 50)
    rng = np.random.default_rng(0)
    moved = augment.apply(ids, 3, rng)  # a level past the top: clipped
    velocity = np.isin(ids, [5, 6, 7, 8])
    assert (moved[~velocity] == ids[~velocity]).all()
    assert np.isin(moved[velocity], [5, 6, 7, 8]).all()
    assert (moved[velocity] != ids[velocity]).any()
    assert (augment.apply(ids, 0, rng) == ids).sum() < len(ids)  # jitter alone moves some
    assert (VelocityAugment(VOCABULARY, 0, 0).apply(ids, 0, rng) == ids).all()


def test_batches_vary_velocities_reproducibly() -> None:
    pieces = [np.array([4, 6, 9] * 40), np.array([4, 7, 9] * 30)]
    augment = VelocityAugment(VOCABULARY, shift=1, jitter=1)
    plan = EpochPlan([len(p) for p in pieces], 2, 16, seed=3, epoch=1, velocity_shift=1)
    plain = Batcher(pieces, 16).batch(plan, 1, range(2))
    first = Batcher(pieces, 16, velocity=augment).batch(plan, 1, range(2))
    again = Batcher(pieces, 16, velocity=augment).batch(plan, 1, range(2))
    assert (first.inputs == again.inputs).all()
    assert (first.inputs != plain.inputs).any()
    assert ((first.inputs == plain.inputs) | np.isin(plain.inputs, [5, 6, 7, 8])).all()
