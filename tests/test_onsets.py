"""Onset augmentation: REMI positions move a step or two, the bar's order always kept, each
token the same in every window that holds it, and the tokens still decode to the same notes."""

from __future__ import annotations

import numpy as np
import symusic

from lstm_music.tokens import get_tokenizer
from lstm_music.tokens.onsets import MARGIN, OnsetAugment
from lstm_music.training.batches import Batcher, EpochPlan, make_batcher
from lstm_music.training.settings import TrainConfig


def remi_piece(tpq: int = 480, bars: int = 24) -> tuple[list[str], symusic.Score]:
    """A piano piece with chords, offbeats and a held bass: REMI tokens and the score."""
    rng = np.random.default_rng(0)
    track = symusic.Track(program=0)
    for bar in range(bars):
        for step in sorted(rng.choice(16, size=6, replace=False)):  # sixteenth-note onsets
            for pitch in rng.choice(np.arange(55, 80), size=int(rng.integers(1, 4)), replace=False):
                time = bar * 4 * tpq + int(step) * tpq // 4
                track.notes.append(symusic.Note(time, tpq // 2, int(pitch), 80))
    score = symusic.Score(tpq)
    score.tracks.append(track)
    tokenizer = get_tokenizer("remi")
    return tokenizer.encode(score), score


def vocabulary_and_ids(tokens: list[str]) -> tuple[list[str], np.ndarray]:
    vocabulary = ["<pad>", "<bos>", "<eos>", *get_tokenizer("remi").base_vocabulary()]
    index = {token: i for i, token in enumerate(vocabulary)}
    return vocabulary, np.array([index[t] for t in tokens], dtype=np.int64)


def bars_of(vocabulary: list[str], ids: np.ndarray) -> list[list[int]]:
    """The position numbers of each bar, in order."""
    bars: list[list[int]] = []
    for i in ids:
        token = vocabulary[i]
        if token == "Bar_None":
            bars.append([])
        elif token.startswith("Position_"):
            bars[-1].append(int(token.split("_")[1]))
    return bars


def test_onsets_move_within_their_bar_and_keep_its_order() -> None:
    tokens, _ = remi_piece()
    vocabulary, ids = vocabulary_and_ids(tokens)
    augment = OnsetAugment(vocabulary, jitter=1)
    moved = augment.apply(ids, [0, 0, 0], 0)
    position = np.array([t.startswith("Position_") for t in vocabulary])[ids]
    assert (moved[~position] == ids[~position]).all()  # pitches, velocities, bars stay
    before, after = bars_of(vocabulary, ids), bars_of(vocabulary, moved)
    assert [len(bar) for bar in before] == [len(bar) for bar in after]
    steps = np.concatenate([np.subtract(a, b) for a, b in zip(after, before)])
    assert set(steps.tolist()) == {-1, 0, 1}  # some move each way, none further
    for bar, old in zip(after, before):
        assert all(x < y for x, y in zip(bar, bar[1:]))  # strictly in order
        assert bar[-1] <= old[-1] and bar[0] >= 0  # the last never later: bars differ in length


def test_moved_tokens_decode_to_the_same_notes_a_step_away() -> None:
    tokens, score = remi_piece()
    vocabulary, ids = vocabulary_and_ids(tokens)
    moved = OnsetAugment(vocabulary, jitter=1).apply(ids, [4, 1, 2], 0)
    decoded = get_tokenizer("remi").decode([vocabulary[i] for i in moved])
    original = get_tokenizer("remi").decode(tokens)
    notes = [n for t in decoded.tracks for n in t.notes]
    plain = [n for t in original.tracks for n in t.notes]
    step = decoded.ticks_per_quarter // 8  # REMI's default grid: 8 steps a beat
    assert sorted((n.pitch, n.duration) for n in notes) == sorted(
        (n.pitch, n.duration) for n in plain
    )
    shifts = np.subtract(
        sorted(n.time for n in notes), sorted(n.time for n in plain)
    )  # fmt: skip
    assert np.abs(shifts).max() <= step and (shifts != 0).any()


def test_windows_agree_on_every_token() -> None:
    """The last target of a window is the first input of the next, and a window's tokens are
    those of the whole piece varied at once: the margin makes each move window-independent."""
    tokens, _ = remi_piece(bars=80)
    vocabulary, ids = vocabulary_and_ids(tokens)
    augment = OnsetAugment(vocabulary, jitter=1)
    plan = EpochPlan([len(ids)], 1, 16, seed=3, epoch=1)
    batcher = Batcher([ids], 16, onset=augment)
    stream = [batcher.batch(plan, index, range(1)) for index in range(plan.batches)]
    for before, after in zip(stream, stream[1:]):
        assert before.targets[0, -1] == after.inputs[0, 0]
    whole = augment.apply(np.concatenate(([1], ids, [2])), [3, 1, 0], 0)
    seen = np.concatenate([b.inputs[0] for b in stream])[: len(whole) - 1]
    assert len(ids) > 2 * MARGIN and (seen == whole[:-1]).all()


def test_onset_jitter_reaches_the_batches_through_the_config() -> None:
    class Tokenizer:
        has_pitch = False

    tokens, _ = remi_piece()
    vocabulary, ids = vocabulary_and_ids(tokens)
    plan = EpochPlan([len(ids)], 1, 64, seed=3, epoch=1)
    plain, _, _ = make_batcher([ids], vocabulary, Tokenizer(), TrainConfig(transpose="0"))
    config = TrainConfig(transpose="0", onset_jitter=1)
    varied, _, notes = make_batcher([ids], vocabulary, Tokenizer(), config)
    before, after = plain.batch(plan, 0, range(1)), varied.batch(plan, 0, range(1))
    assert not notes and (before.inputs != after.inputs).any()
    grid = ["<pad>", "<bos>", "<eos>", "Pitch_60", "TimeShift_1.0.8"]
    _, _, notes = make_batcher([ids], grid, Tokenizer(), config)
    assert notes == ["this corpus's tokens have no positions in a bar: onset augmentation is off"]


def test_a_neighbour_beyond_the_margin_holds_a_position_still_in_every_window() -> None:
    """A chord so long that its position's neighbour lies past MARGIN tokens: whether a window
    sees that neighbour or not, the position after it stays, so the windows still agree."""
    vocabulary = [
        "<pad>",
        "<bos>",
        "<eos>",
        "Bar_None",
        "Pitch_60",
        *(f"Position_{i}" for i in range(32)),
    ]
    bar, pitch, at = 3, 4, {i: 5 + i for i in range(32)}
    body: list[int] = []
    for _ in range(40):
        body += [bar, at[0], pitch, at[8], *[pitch] * (MARGIN + 50), at[16], pitch, at[24], pitch]
    ids = np.array(body, dtype=np.int64)
    augment = OnsetAugment(vocabulary, jitter=1)
    whole = augment.apply(np.concatenate(([1], ids, [2])), [3, 1, 0], 0)
    far = np.flatnonzero(np.concatenate(([1], ids, [2])) == at[16])
    assert (whole[far] == at[16]).all()  # its neighbour before is too far: never moved
    assert (whole != np.concatenate(([1], ids, [2]))).any()  # others did move
    plan = EpochPlan([len(ids)], 1, 16, seed=3, epoch=1)
    batcher = Batcher([ids], 16, onset=augment)
    seen = np.concatenate([batcher.batch(plan, i, range(1)).inputs[0] for i in range(plan.batches)])
    assert (seen[: len(whole) - 1] == whole[:-1]).all()
