"""Velocity and duration augmentation: only their tokens move, inside the tokenizer's range,
the same way after a resume."""

from __future__ import annotations

import numpy as np

from lstm_music.tokens.velocity import (
    DurationAugment,
    VelocityAugment,
    token_ranks,
    velocity_ranks,
)
from lstm_music.training.batches import Batcher, EpochPlan, make_batcher
from lstm_music.training.settings import TrainConfig

VOCABULARY = ["<pad>", "<bos>", "<eos>", "Bar_None", "Pitch_60", "Velocity_3", "Velocity_7",
              "Velocity_11", "Velocity_15", "Duration_1.0.8"]  # fmt: skip


def test_ranks_follow_the_velocity_values() -> None:
    ranks, by_rank = velocity_ranks(["Velocity_11", "Pitch_60", "Velocity_3"])
    assert ranks.tolist() == [1, -1, 0] and by_rank.tolist() == [2, 0]
    assert len(velocity_ranks(["Pitch_60"])[1]) == 0


def test_only_velocities_move_and_stay_in_range() -> None:
    augment = VelocityAugment(VOCABULARY, shift=2, jitter=1)
    ids = np.array([1, 3, 4, 6, 9, 4, 7, 9, 2] * 50)
    moved = augment.apply(ids, 3, [0, 0, 0], 0)  # a level past the top: clipped
    velocity = np.isin(ids, [5, 6, 7, 8])
    assert (moved[~velocity] == ids[~velocity]).all()
    assert np.isin(moved[velocity], [5, 6, 7, 8]).all()
    assert (moved[velocity] != ids[velocity]).any()
    assert (augment.apply(ids, 0, [0, 0, 0], 0) == ids).sum() < len(ids)  # jitter alone moves
    assert (VelocityAugment(VOCABULARY, 0, 0).apply(ids, 0, [0, 0, 0], 0) == ids).all()


def test_a_position_gets_one_jitter_whatever_window_holds_it() -> None:
    augment = VelocityAugment(VOCABULARY, shift=0, jitter=2)
    whole = augment.jitter_at([1, 2, 3], 0, 10_000)  # crosses two block edges
    for start, count in [(0, 5), (4090, 20), (8191, 2), (123, 9000)]:
        assert (augment.jitter_at([1, 2, 3], start, count) == whole[start : start + count]).all()
    assert (augment.jitter_at([1, 2, 4], 0, 10_000) != whole).any()  # another piece, other draws


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


def test_a_window_reads_the_token_the_previous_window_predicted() -> None:
    """Jittered velocities stay one sequence across window edges: a piece, not a patchwork."""
    pieces = [np.array([4, 6, 9] * 200)]
    augment = VelocityAugment(VOCABULARY, shift=1, jitter=1)
    plan = EpochPlan([600], 1, 16, seed=3, epoch=1, velocity_shift=1)
    batcher = Batcher(pieces, 16, velocity=augment)
    batches = [batcher.batch(plan, index, range(1)) for index in range(plan.batches)]
    for before, after in zip(batches, batches[1:]):
        assert before.targets[0, -1] == after.inputs[0, 0]
    assert len({int(t) for b in batches for t in b.inputs[0]} & {5, 6, 7, 8}) > 1


def test_durations_move_in_their_own_bins_and_own_draws() -> None:
    vocabulary = [*VOCABULARY, "Duration_0.4.8", "Duration_2.0.8", "Duration_0.2.8"]
    ranks, by_rank = token_ranks(vocabulary, "duration")
    assert [vocabulary[i] for i in by_rank] == [
        "Duration_0.2.8", "Duration_0.4.8", "Duration_1.0.8", "Duration_2.0.8"
    ]  # fmt: skip
    augment = DurationAugment(vocabulary, jitter=1)
    ids = np.array([1, 3, 4, 6, 9, 4, 7, 10, 2] * 50)
    moved = augment.apply(ids, 0, [0, 0, 0], 0)
    duration = np.isin(ids, [9, 10, 11, 12])
    assert (moved[~duration] == ids[~duration]).all()  # velocities and pitches stay
    assert (moved[duration] != ids[duration]).any()
    steps = np.abs(ranks[moved[duration]] - ranks[ids[duration]])
    assert steps.max() == 1  # one bin at most
    velocity = VelocityAugment(vocabulary, shift=0, jitter=1)
    assert (augment.jitter_at([5, 5, 5], 0, 500) != velocity.jitter_at([5, 5, 5], 0, 500)).any()


def test_duration_jitter_reaches_the_batches_through_the_config() -> None:
    class Tokenizer:
        has_pitch = False

    vocabulary = [*VOCABULARY, "Duration_0.4.8"]
    pieces = [np.array([4, 6, 9, 4, 6, 10] * 40)]
    plan = EpochPlan([240], 1, 16, seed=3, epoch=1)
    plain, _, _ = make_batcher(pieces, vocabulary, Tokenizer(), TrainConfig(transpose="0"))
    config = TrainConfig(transpose="0", duration_jitter=1)
    varied, _, notes = make_batcher(pieces, vocabulary, Tokenizer(), config)
    before, after = plain.batch(plan, 0, range(1)), varied.batch(plan, 0, range(1))
    assert not notes and (before.inputs != after.inputs).any()
    assert ((before.inputs == after.inputs) | np.isin(before.inputs, [9, 10])).all()
    _, _, notes = make_batcher(pieces, ["<pad>", "<bos>", "<eos>", "Pitch_60"], Tokenizer(), config)
    assert notes == ["this corpus's tokens have no durations: duration augmentation is off"]
