"""The `grid` tokenizer: token rules, grid snapping, exact round trips (JSB and random rolls)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import symusic
from hypothesis import given, settings
from hypothesis import strategies as st

from lstm_music.tokens import get_tokenizer, tokenizer_from_config
from lstm_music.tokens.base import TokenizerError
from lstm_music.tokens.grid import (
    GridTokenizer,
    parse_grid_step,
    roll_to_score,
    roll_to_tokens,
    score_to_roll,
    tokens_to_roll,
)

JSB_PATH = (
    Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "jsb" / "JSB_Chorales.mat"
)
TRIAD = ["Pitch_60", "Pitch_64", "Pitch_67", "Step"]


def make_score(notes: list[tuple[int, int, int]], tpq: int = 480, tracks: int = 1) -> symusic.Score:
    """A score of (time, duration, pitch) notes in ticks, dealt round-robin over `tracks` tracks."""
    score = symusic.Score(tpq)
    for index in range(tracks):
        track = symusic.Track(f"t{index}")
        for time, duration, pitch in notes[index::tracks]:
            track.notes.append(symusic.Note(time, duration, pitch, 80))
        score.tracks.append(track)
    return score


def midi_trip(roll: np.ndarray, step: float, tpq: int = 480) -> np.ndarray:
    """roll -> score -> MIDI bytes -> score -> roll."""
    data = roll_to_score(roll, step, tpq=tpq).dumps_midi()
    return score_to_roll(symusic.Score.from_midi(data), step)


def trim_trailing_silence(roll: np.ndarray) -> np.ndarray:
    """`roll` without its trailing empty steps, which no note can carry through a score."""
    active = np.flatnonzero(roll.any(axis=1))
    return roll[: active[-1] + 1] if active.size else roll[:0]


# --- tokens of hand-made scores ---


def test_triad_held_two_steps() -> None:
    score = make_score([(0, 240, 60), (0, 240, 64), (0, 240, 67)], tracks=3)
    assert GridTokenizer(0.25).encode(score) == TRIAD * 2


def test_empty_steps_and_empty_score() -> None:
    tokenizer = GridTokenizer(1.0)
    score = make_score([(0, 480, 62), (1440, 480, 60)])
    assert tokenizer.encode(score) == ["Pitch_62", "Step", "Step", "Step", "Pitch_60", "Step"]
    leading = make_score([(960, 480, 60)])  # leading silence is kept (note times are absolute)
    assert tokenizer.encode(leading) == ["Step", "Step", "Pitch_60", "Step"]
    assert tokenizer.encode(symusic.Score(480)) == []
    assert score_to_roll(symusic.Score(480), 1.0).shape == (0, 128)


def test_off_grid_notes_snap_to_nearest_line() -> None:
    # sixteenths at tpq 480 are 120 ticks: 59 -> 0, 60 -> 1 (halves round up), 181 -> 2
    roll = score_to_roll(make_score([(59, 122, 60), (60, 120, 62), (181, 300, 64)]), 0.25)
    assert np.flatnonzero(roll[:, 60]).tolist() == [0, 1]  # 59..181 -> [0, 2)
    assert np.flatnonzero(roll[:, 62]).tolist() == [1]  # 60..180 -> [1, 2)
    assert np.flatnonzero(roll[:, 64]).tolist() == [2, 3]  # 181..481 -> [2, 4)


def test_very_short_note_keeps_one_step() -> None:
    roll = score_to_roll(make_score([(475, 10, 60), (0, 0, 72)]), 1.0)
    assert np.flatnonzero(roll[:, 60]).tolist() == [1]  # snaps to line 1, still one step
    assert np.flatnonzero(roll[:, 72]).tolist() == [0]  # even a zero-length note


def test_negative_pitches_are_dropped_and_huge_pieces_refused() -> None:
    roll = score_to_roll(make_score([(0, 10, -5), (0, 10, 60)]), 1.0)
    assert np.flatnonzero(roll).tolist() == [60]
    with pytest.raises(TokenizerError, match="grid steps long"):
        score_to_roll(make_score([(0, 10, 60), (2_000_000_000, 10, 60)]), 1.0)


def test_non_tick_scores_are_converted() -> None:
    score = make_score([(0, 480, 60), (480, 960, 64)]).to("quarter")
    assert GridTokenizer(1.0).encode(score) == [
        "Pitch_60",
        "Step",
        "Pitch_64",
        "Step",
        "Pitch_64",
        "Step",
    ]


def test_decode_is_lenient() -> None:
    tokenizer = GridTokenizer(1.0)
    tokens = ["Pitch_67", "Pitch_60", "Pitch_60", "Step", "Bar", "Step", "Pitch_64"]
    roll = tokens_to_roll(tokens)  # last step has no Step token; duplicates and order are free
    assert roll.shape == (3, 128)
    assert [np.flatnonzero(row).tolist() for row in roll] == [[60, 67], [], [64]]
    notes = tokenizer.decode(tokens).tracks[0].notes.numpy()
    assert notes["time"].tolist() == [0, 0, 960] and notes["pitch"].tolist() == [60, 67, 64]
    assert tokenizer.decode([]).note_num() == 0
    assert tokenizer.decode(["Step", "Step"]).note_num() == 0


def test_held_note_is_one_note() -> None:
    roll = tokens_to_roll(["Pitch_60", "Step"] * 3 + ["Step", "Pitch_60", "Step"])
    notes = roll_to_score(roll, 0.5, tpq=96).tracks[0].notes.numpy()
    assert notes["time"].tolist() == [0, 192] and notes["duration"].tolist() == [144, 48]


# --- config, vocabulary, step parsing ---


def test_config_and_vocabulary() -> None:
    tokenizer = get_tokenizer("grid", step=0.5)
    assert (tokenizer.name, tokenizer.timed, tokenizer.has_pitch) == ("grid", True, True)
    assert tokenizer.params() == {"step": 0.5}
    assert tokenizer_from_config(tokenizer.to_config()).step == 0.5
    assert GridTokenizer("1/8").step == GridTokenizer("eighth").step == 0.5  # as --grid-step
    vocabulary = tokenizer.base_vocabulary()
    assert vocabulary[:2] == ["Pitch_0", "Pitch_1"] and vocabulary[-2:] == ["Pitch_127", "Step"]
    assert len(vocabulary) == len(set(vocabulary)) == 129


@pytest.mark.parametrize(
    ("text", "quarters"),
    [("sixteenth", 0.25), ("Eighth", 0.5), ("quarter", 1.0), ("half", 2.0), ("whole", 4.0)]
    + [("1/16", 0.25), ("1/8", 0.5), ("1/4", 1.0), ("3/8", 1.5), ("0.25", 0.25), ("1", 1.0)],
)
def test_parse_grid_step(text: str, quarters: float) -> None:
    assert parse_grid_step(text) == quarters


@pytest.mark.parametrize(
    "text", ["", "tiny", "1/0", "1/x", "-0.25", "0", "nan", "inf", "1/512", "64"]
)
def test_parse_grid_step_rejects(text: str) -> None:
    with pytest.raises(TokenizerError, match="grid.step"):
        parse_grid_step(text)


@pytest.mark.parametrize("step", [0, -1, float("nan"), float("inf"), 1 / 128, 17, True, None, [1]])
def test_bad_step_is_refused(step: object) -> None:
    with pytest.raises(TokenizerError, match="grid step"):
        GridTokenizer(step)  # type: ignore[arg-type]


def test_roll_to_score_refuses_sub_tick_steps_and_bad_rolls() -> None:
    with pytest.raises(TokenizerError, match="under one tick"):
        roll_to_score(np.zeros((2, 128), bool), 1 / 64, tpq=32)
    with pytest.raises(TokenizerError, match="piano roll"):
        roll_to_score(np.zeros((2, 88), bool), 1.0)


# --- JSB Chorales: every chorale survives a trip through a MIDI file ---


@pytest.fixture(scope="module")
def jsb_rolls() -> dict[str, list[np.ndarray]]:
    if importlib.util.find_spec("scipy") is None:
        pytest.skip("scipy is not installed (pip install scipy) to read JSB_Chorales.mat")
    if not JSB_PATH.is_file():
        pytest.skip(f"JSB Chorales not found at {JSB_PATH}")
    from lstm_music.corpus.pianoroll import load_piano_roll_mat

    return load_piano_roll_mat(JSB_PATH)


def test_jsb_matches_its_description(jsb_rolls: dict[str, list[np.ndarray]]) -> None:
    sizes = {split: (len(r), sum(len(x) for x in r)) for split, r in jsb_rolls.items()}
    assert sizes == {"train": (229, 13807), "valid": (76, 4602), "test": (77, 4725)}
    rolls = [roll for split in jsb_rolls.values() for roll in split]
    assert all(roll.dtype == bool and roll.shape[1] == 128 for roll in rolls)
    assert not any(roll[:, :21].any() or roll[:, 109:].any() for roll in rolls)
    # A MIDI file cannot carry trailing silence without the frame marker; JSB has none (nor
    # leading), so the unmarked trip below compares whole rolls. 21 chorales do have silent
    # steps inside (64 steps), which must survive.
    assert all(roll[0].any() and roll[-1].any() for roll in rolls)
    assert sum(int((~roll.any(axis=1)).sum()) for roll in rolls) == 64


def test_jsb_round_trip_through_midi(jsb_rolls: dict[str, list[np.ndarray]]) -> None:
    for split, rolls in jsb_rolls.items():
        for index, roll in enumerate(rolls):
            assert np.array_equal(midi_trip(roll, 1.0), roll), f"{split} chorale {index}"
            assert np.array_equal(tokens_to_roll(roll_to_tokens(roll)), roll), f"{split} {index}"


def test_jsb_write_split_midi(jsb_rolls: dict[str, list[np.ndarray]], tmp_path: Path) -> None:
    from lstm_music.corpus.pianoroll import write_split_midi

    subset = {split: rolls[:2] for split, rolls in jsb_rolls.items()}
    paths = write_split_midi(subset, tmp_path, 1.0)
    assert [p.relative_to(tmp_path).as_posix() for p in paths][:3] == [
        "train/000.mid",
        "train/001.mid",
        "valid/000.mid",
    ]
    back = score_to_roll(symusic.Score(str(paths[-1])), 1.0)
    assert np.array_equal(back, subset["test"][1])


# --- properties ---


@st.composite
def rolls(draw: st.DrawFn) -> np.ndarray:
    """Small random bool (T, 128) rolls over a few pitches, extremes 0 and 127 included."""
    n_steps = draw(st.integers(0, 12))
    pitches = draw(
        st.lists(st.sampled_from([0, 1, 59, 60, 61, 126, 127]), min_size=1, max_size=4, unique=True)
    )
    cells = draw(
        st.lists(st.booleans(), min_size=n_steps * len(pitches), max_size=n_steps * len(pitches))
    )
    roll = np.zeros((n_steps, 128), dtype=bool)
    roll[:, pitches] = np.array(cells, dtype=bool).reshape(n_steps, len(pitches))
    return roll


# (step, tpq): integral step ticks, then non-integral ones (1.5, 7.5 and 38.4 ticks a step)
GRIDS = [(s, t) for s in (0.25, 0.5, 1.0) for t in (96, 480, 384)] + [
    (1 / 64, 96),
    (1 / 64, 480),
    (0.1, 384),
]


@settings(max_examples=150, deadline=None)
@given(roll=rolls(), grid=st.sampled_from(GRIDS))
def test_random_rolls_survive_midi(roll: np.ndarray, grid: tuple[float, int]) -> None:
    step, tpq = grid
    assert np.array_equal(midi_trip(roll, step, tpq), trim_trailing_silence(roll))
    assert np.array_equal(tokens_to_roll(roll_to_tokens(roll)), roll)


@settings(max_examples=150, deadline=None)
@given(roll=rolls(), grid=st.sampled_from(GRIDS), lead=st.integers(0, 3), tail=st.integers(0, 3))
def test_frame_marked_rolls_survive_midi_whole(
    roll: np.ndarray, grid: tuple[float, int], lead: int, tail: int
) -> None:
    step, tpq = grid
    roll[:, :2] = False  # the marker's keys
    roll = np.concatenate([np.zeros((lead, 128), bool), roll, np.zeros((tail, 128), bool)])
    data = roll_to_score(roll, step, tpq=tpq, mark_frames=True).dumps_midi()
    back = score_to_roll(symusic.Score.from_midi(data), step)
    assert np.array_equal(back, roll)  # leading and trailing silent steps included
    assert np.array_equal(
        tokens_to_roll(GridTokenizer(step).encode(symusic.Score.from_midi(data))), roll
    )


def test_frame_marker_is_extent_not_sound() -> None:
    marker_only = make_score([(0, 480 * 5, 0)])
    marker_only.tracks[0].notes[0].velocity = 1
    assert GridTokenizer(1.0).encode(marker_only) == ["Step"] * 5
    loud_c = make_score([(0, 480 * 2, 0)])  # pitch 0 at another velocity is a note
    assert GridTokenizer(1.0).encode(loud_c) == ["Pitch_0", "Step"] * 2
    with pytest.raises(TokenizerError, match="frame-marked"):
        roll_to_score(np.ones((2, 128), bool), 1.0, mark_frames=True)
    with pytest.raises(TokenizerError, match="frame-marked"):
        roll_to_score(np.zeros((2, 128), bool), 1.0, velocity=1, mark_frames=True)
    assert roll_to_score(np.zeros((0, 128), bool), 1.0, mark_frames=True).note_num() == 0


def test_long_frame_marker_is_short_notes_end_to_end() -> None:
    roll = np.zeros((100, 128), bool)
    roll[3:5, 60] = True  # then 95 silent quarters
    notes = roll_to_score(roll, 1.0, tpq=96, mark_frames=True).tracks[0].notes.numpy()
    marker = notes["velocity"] == 1
    assert notes["pitch"][marker].tolist() == [0, 1, 0, 1]  # 32 + 32 + 32 + 4 quarters
    assert notes["time"][marker].tolist() == [0, 32 * 96, 64 * 96, 96 * 96]
    assert notes["duration"][marker].max() == 32 * 96
    assert np.array_equal(midi_trip_marked(roll, 1.0), roll)


def midi_trip_marked(roll: np.ndarray, step: float) -> np.ndarray:
    data = roll_to_score(roll, step, mark_frames=True).dumps_midi()
    return score_to_roll(symusic.Score.from_midi(data), step)


TOKENS = st.sampled_from(["Step", "Pitch_0", "Pitch_60", "Pitch_127", "Pitch_128", "Pitch_-1"])
ODD = st.one_of(TOKENS, st.text(alphabet="Pitch_ 0123456789", max_size=9))


@settings(max_examples=100, deadline=None)
@given(tokens=st.lists(ODD, max_size=40), step=st.sampled_from([1 / 64, 0.25, 1.0, 16.0]))
def test_decode_never_raises(tokens: list[str], step: float) -> None:
    score = GridTokenizer(step).decode(tokens)
    expected = tokens_to_roll(tokens)
    assert score.note_num() == int((np.diff(expected.astype(int), axis=0, prepend=0) == 1).sum())
    assert np.array_equal(score_to_roll(score, step), trim_trailing_silence(expected))
