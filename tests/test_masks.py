"""Hard constraints: keys, ranges and instruments parsed; masks keep every sampled pitch in the
scale and range for every tokenizer, never stall, and are refused plainly where they cannot work."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import symusic
import torch

import lstm_music.generation.generate as generate_module
from lstm_music.cli import main
from lstm_music.corpus.store import SPECIAL_TOKENS
from lstm_music.errors import SettingError
from lstm_music.generation.generate import generate
from lstm_music.generation.masks import (
    TokenMask,
    parse_instruments,
    parse_key,
    parse_pitch_range,
    token_facts,
    token_mask,
)
from lstm_music.generation.sampling import SamplingOptions
from lstm_music.generation.stepper import pick_tokens
from lstm_music.model.checkpoint import Checkpoint, load_checkpoint
from lstm_music.model.lstm import LSTMModel, ModelConfig
from lstm_music.model.shipped import resolve_checkpoint
from lstm_music.tokens import get_tokenizer
from lstm_music.tokens.grid import VOCABULARY as GRID_VOCABULARY
from lstm_music.tokens.seed import normal_order, pitch_name

D_MINOR = {2, 4, 5, 7, 9, 10, 0}
PROGRAMS = {"use_programs": True, "one_token_stream_for_programs": True,
            "program_changes": False, "use_pitchdrum_tokens": True}  # fmt: skip


def seed_tokens() -> list[str]:
    """Note names over four octaves and chords (normal orders), as the seed's data holds."""
    rng = np.random.default_rng(0)
    chords = {".".join(map(str, normal_order(list(rng.choice(12, 3, replace=False)))))
              for _ in range(40)}  # fmt: skip
    return [pitch_name(p) for p in range(36, 85)] + sorted(chords)


def vocabulary(kind: str) -> tuple[object, list[str]]:
    """(tokenizer, its tokens) for a tiny model: remi, remi with programs, seed, grid."""
    if kind == "seed":
        return get_tokenizer("seed"), seed_tokens()
    if kind == "grid":
        return get_tokenizer("grid"), list(GRID_VOCABULARY)
    tokenizer = get_tokenizer("remi", config=PROGRAMS if kind == "programs" else None)
    return tokenizer, tokenizer.base_vocabulary()


def tiny_model(kind: str, seed: int = 0, keep=None) -> Checkpoint:
    """A random tiny LSTM over the tokenizer's vocabulary (those `keep` keeps): it samples
    nearly uniformly."""
    tokenizer, tokens = vocabulary(kind)
    words = [*SPECIAL_TOKENS, *filter(keep, tokens)]
    torch.manual_seed(seed)
    model = LSTMModel(ModelConfig(len(words), 8, [16], 0.0)).eval()
    return Checkpoint(model, tokenizer.to_config(), words)


def shipped(name: str) -> Checkpoint:
    return load_checkpoint(resolve_checkpoint(name))


def pitched_notes(score: symusic.Score) -> list[int]:
    """Pitches of every non-drum note."""
    return [note.pitch for track in score.tracks if not track.is_drum for note in track.notes]


def new_pitch_tokens(piece) -> list[int]:
    return [int(t.split("_")[1]) for t in piece.tokens if t.startswith(("Pitch_", "NoteOn_"))]


# --- parsing -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "classes"),
    [
        ("D-minor", D_MINOR),
        ("Bb-major", {10, 0, 2, 3, 5, 7, 9}),
        ("F#-minor", {6, 8, 9, 11, 1, 2, 4}),
        ("c-minor", {0, 2, 3, 5, 7, 8, 10}),
        ("Ebm", {3, 5, 6, 8, 10, 11, 1}),
        ("A harmonic minor", {9, 11, 0, 2, 4, 5, 8}),
        ("D dorian", {2, 4, 5, 7, 9, 11, 0}),
        ("b-major", {11, 1, 3, 4, 6, 8, 10}),
    ],
)
def test_keys_name_their_scales(text: str, classes: set[int]) -> None:
    assert parse_key(text).pitch_classes == classes


@pytest.mark.parametrize("text", ["H-minor", "D-sideways", "minor", "", "D", "D#b-major"])
def test_bad_keys_are_one_line(text: str) -> None:
    with pytest.raises(SettingError) as error:
        parse_key(text)
    assert error.value.setting == "key" and "\n" not in str(error.value)
    assert "D-minor" in str(error.value)  # says how to write one


@pytest.mark.parametrize(
    ("text", "bounds"),
    [("48..84", (48, 84)), ("C3..C6", (48, 84)), ("48-84", (48, 84)), ("C-1..G9", (0, 127)),
     ("Bb3..F#5", (58, 78)), ("C3-C6", (48, 84)), ((40, 50), (40, 50)), (["C4", "C5"], (60, 72)),
     ("60..60", (60, 60))],
)  # fmt: skip
def test_pitch_ranges_read_numbers_and_note_names(text, bounds) -> None:
    assert parse_pitch_range(text) == bounds


@pytest.mark.parametrize("text", ["84..48", "x", "0..128", "60", "C3..H4", (1, 2, 3), (-1, 5)])
def test_bad_pitch_ranges_are_refused(text) -> None:
    with pytest.raises(SettingError) as error:
        parse_pitch_range(text)
    assert error.value.setting == "pitch_range" and "\n" not in str(error.value)


def test_instruments_are_gm_families_or_programs() -> None:
    piano_bass_drums = set(range(8)) | set(range(32, 40)) | {-1}
    assert parse_instruments("piano,bass,drums") == piano_bass_drums
    assert parse_instruments("strings") == set(range(40, 52))
    assert parse_instruments(" Synth Lead , 0, -1") == set(range(80, 88)) | {0, -1}
    assert parse_instruments([33, "guitar"]) == {33, *range(24, 32)}
    for bad in ("piano,kazoo", "128", "", ","):
        with pytest.raises(SettingError) as error:
            parse_instruments(bad)
        assert error.value.setting == "instruments"


def test_sampling_options_check_and_keep_the_constraints() -> None:
    options = SamplingOptions(key="D-minor", key_strict=True, pitch_range="C3..C6",
                              instruments="piano, bass")  # fmt: skip
    assert options.pitch_range == (48, 84) and options.instruments == ("piano", "bass")
    assert dataclasses.replace(options, seed=3).pitch_range == (48, 84)  # the web's copies
    for settings, field in [({"key_strict": True}, "key_strict"), ({"key": "X"}, "key"),
                            ({"pitch_range": "9..1"}, "pitch_range"),
                            ({"instruments": "kazoo"}, "instruments")]:  # fmt: skip
        with pytest.raises(SettingError) as error:
            SamplingOptions(**settings)
        assert error.value.setting == field


# --- what tokens hold ----------------------------------------------------------------------


def test_token_facts_per_tokenizer() -> None:
    seed = token_facts(["C#4", "0.4.7", "B-3", "<pad>"], "seed")
    assert [f.pitches for f in seed] == [(61,), (60, 64, 67), (58,), ()]
    tokens = ["Pitch_60", "PitchDrum_36", "Program_-1", "Program_33", "NoteOn_62",
              "NoteOff_62", "Duration_1.0.8", "Step", "PitchIntervalTime_3"]  # fmt: skip
    kinds = token_facts(tokens, "remi")
    assert kinds[0].pitches == (60,) and kinds[1].drum and kinds[1].pitches == (36,)
    assert (kinds[2].program, kinds[3].program, kinds[4].pitches) == (-1, 33, (62,))
    assert not any(f.pitches or f.drum or f.relative for f in kinds[5:8]) and kinds[8].relative


def test_seed_facts_are_what_the_seed_decoder_writes() -> None:
    tokenizer, tokens = vocabulary("seed")
    for token, fact in zip(tokens, token_facts(tokens, "seed")):
        decoded = sorted(n.pitch for t in tokenizer.decode([token]).tracks for n in t.notes)
        assert decoded == sorted(fact.pitches), token


# --- generation under the masks ------------------------------------------------------------


@pytest.mark.parametrize("kind", ["remi", "seed", "grid", "programs"])
@pytest.mark.parametrize("key", ["D-minor", "F#-major"])
def test_key_strict_writes_no_pitch_outside_the_scale(kind: str, key: str) -> None:
    checkpoint, scale = tiny_model(kind), parse_key(key).pitch_classes
    free = generate(checkpoint, tokens=300, seed=1, num=2)
    strict = generate(checkpoint, tokens=300, seed=1, num=2, key=key, key_strict=True)
    free_pitches = [
        p for piece in free for p in new_pitch_tokens(piece) + pitched_notes(piece.score)
    ]
    assert {p % 12 for p in free_pitches} - scale  # without the mask this model leaves the scale
    for piece in strict:
        assert len(piece.tokens) == 300  # (a random REMI model may write no whole note)
        assert not [w for w in piece.warnings if "freely" in w or "not applied" in w]
        pitches = new_pitch_tokens(piece) + pitched_notes(piece.score)
        assert pitches and all(p % 12 in scale for p in pitches)
        if kind in ("seed", "grid"):
            assert len(pitched_notes(piece.score)) > 50


@pytest.mark.parametrize("kind", ["seed", "grid", "remi"])
def test_pitch_range_and_key_together(kind: str) -> None:
    pieces = generate(tiny_model(kind), tokens=300, seed=2, pitch_range="C4..B4",
                      key="c-major", key_strict=True)  # fmt: skip
    pitches = new_pitch_tokens(pieces[0]) + pitched_notes(pieces[0].score)
    assert pitches and set(pitches) <= {60, 62, 64, 65, 67, 69, 71}


@pytest.mark.parametrize("model", ["grid", "bach-chorales"])
def test_greedy_decoding_keeps_the_key(model: str) -> None:
    checkpoint = tiny_model("grid", seed=5) if model == "grid" else shipped(model)
    scale = parse_key("F#-major").pitch_classes
    free = generate(checkpoint, tokens=200, greedy=True)[0]
    strict = generate(checkpoint, tokens=200, greedy=True, key="F#-major", key_strict=True)[0]
    assert {p % 12 for p in pitched_notes(free.score)} - scale
    pitches = pitched_notes(strict.score)
    assert pitches and {p % 12 for p in pitches} <= scale


def test_after_a_drum_program_the_key_leaves_notes_alone() -> None:
    """In a stream with instruments a note is the program token's before it: a drum hit after
    the drums', kept to the key after a pitched one's; without instruments, always a pitch."""
    _, tokens = vocabulary("programs")
    words = [*SPECIAL_TOKENS, *tokens]
    ids = {token: i for i, token in enumerate(words)}
    options = SamplingOptions(key="D-minor", key_strict=True, instruments="piano,drums")
    mask = token_mask(words, "remi", options)
    logits = np.zeros((2, len(words)))
    sharp, drum_sharp = ids["Pitch_61"], ids["PitchDrum_61"]
    assert np.isneginf(mask.apply(logits)[:, [sharp, drum_sharp]]).all()  # pitched at first
    mask.observe(np.array([ids["Program_-1"], ids["Bar_None"]]))
    masked = mask.apply(logits)
    assert np.isfinite(masked[0, [sharp, drum_sharp]]).all() and np.isneginf(masked[1, sharp])
    assert np.isneginf(masked[:, ids["Program_33"]]).all()  # no bass asked, drums or not
    mask.observe(np.array([ids["Program_0"], ids["Position_4"]]))
    assert np.isneginf(mask.apply(logits)[:, sharp]).all()
    primed = SamplingOptions(key="D-minor", key_strict=True, primer=["Program_-1", "Pitch_36"])
    assert np.isfinite(token_mask(words, "remi", primed).apply(logits)[:, sharp]).all()
    plain = [*SPECIAL_TOKENS, *vocabulary("remi")[1]]  # no instruments: PitchDrum is a pitch
    strict = SamplingOptions(key="D-minor", key_strict=True)
    assert not token_mask(plain, "remi", strict).allowed[plain.index("PitchDrum_61")]


def test_instruments_keep_to_the_set() -> None:
    checkpoint = tiny_model("programs")
    free = generate(checkpoint, tokens=400, seed=4)[0]
    assert any(t.startswith("PitchDrum_") for t in free.tokens)
    piece = generate(checkpoint, tokens=400, seed=4, instruments="piano,bass")[0]
    programs = {int(t.split("_")[1]) for t in piece.tokens if t.startswith("Program_")}
    assert programs and programs <= set(range(8)) | set(range(32, 40))
    assert not any(t.startswith("PitchDrum_") for t in piece.tokens)  # no drums asked
    drums = generate(checkpoint, tokens=400, seed=4, instruments="drums")[0]
    assert {t for t in drums.tokens if t.startswith("Program_")} == {"Program_-1"}


@pytest.mark.parametrize("seed", range(4))
def test_instruments_without_piano_write_no_note_before_a_program(seed: int) -> None:
    """A note before any program token would decode as piano (program 0): forbidden until the
    piece has named an instrument, so the decoded tracks are only the asked ones."""
    checkpoint = tiny_model("programs", seed)
    piece = generate(checkpoint, tokens=300, seed=seed, instruments="bass,strings")[0]
    first_note = next(i for i, t in enumerate(piece.tokens) if t.startswith("Pitch"))
    assert any(t.startswith("Program_") for t in piece.tokens[:first_note])
    played = {int(track.program) for track in piece.score.tracks if len(track.notes)}
    assert played and played <= {*range(32, 52)} and not any(t.is_drum for t in piece.score.tracks)
    _, tokens = vocabulary("programs")
    words = [*SPECIAL_TOKENS, *tokens]
    logits = np.zeros((1, len(words)))
    with_piano = token_mask(words, "remi", SamplingOptions(instruments="piano,bass"))
    assert np.isfinite(with_piano.apply(logits)[0, words.index("Pitch_60")])  # piano by default


def test_instruments_refused_for_a_model_without_program_tokens() -> None:
    with pytest.raises(SettingError, match="this model's tokens name no instruments"):
        generate(tiny_model("remi"), tokens=10, instruments="piano")


def test_a_key_alone_is_refused_in_one_line() -> None:
    with pytest.raises(SettingError) as error:
        generate(tiny_model("remi"), tokens=10, key="D-minor")
    assert error.value.setting == "key" and "trained with controls" in str(error.value)


@pytest.mark.parametrize(
    ("kind", "settings", "refusal", "setting"),
    [("remi", {"pitch_range": "0..10"}, "the pitch range 0..10 allows none of this model's "
      "pitches (its pitches: 21..", "pitch_range"),
     ("seed", {"pitch_range": "0..1"}, "the pitch range 0..1 allows none of this model's "
      "pitches (its pitches: 36..84)", "pitch_range"),
     ("grid", {"pitch_range": "61..61", "key": "C-major", "key_strict": True},
      "the key C major within the pitch range 61..61 allows none of this model's pitches "
      "(its pitches there: 61..61)", "key_strict"),
     ("programs", {"instruments": "bass"},
      "this model has tokens for none of the instruments bass", "instruments")],
)  # fmt: skip
def test_a_constraint_nothing_meets_is_refused_before_generating(
    kind, settings, refusal, setting
) -> None:
    # the programs model has a token for the piano only
    checkpoint = tiny_model(kind, keep=lambda t: not t.startswith("Program_") or t == "Program_0")
    with pytest.raises(SettingError) as error:
        generate(checkpoint, tokens=200, seed=5, num=2, **settings)
    assert refusal in str(error.value) and error.value.setting == setting
    assert "\n" not in str(error.value)


def test_the_cli_refuses_a_key_outside_the_range_in_one_line(capsys) -> None:
    code = main(["generate", "--out", "x.mid", "--key", "C-major", "--key-strict",
                 "--pitch-range", "61..61"])  # fmt: skip
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(lines) == 1
    assert "key C major within the pitch range 61..61" in lines[0] and "(--key-strict)" in lines[0]


@pytest.mark.parametrize("greedy", [False, True])
def test_a_mask_leaving_nothing_ends_the_piece(monkeypatch, greedy: bool) -> None:
    checkpoint = tiny_model("seed")
    nothing = TokenMask(np.zeros(len(checkpoint.vocabulary), dtype=bool), "test mask")
    monkeypatch.setattr(generate_module, "token_mask", lambda *args: nothing)
    pieces = generate(checkpoint, tokens=50, seed=6, num=2, greedy=greedy)
    for piece in pieces:
        assert piece.tokens == [] and piece.score.note_num() == 0
        assert "ended after 0 new tokens: the test mask left nothing the model could write " \
            "next" in piece.warnings  # fmt: skip


def test_a_mask_row_ends_alone() -> None:
    allowed = np.array([False, True, True, False])
    mask = TokenMask(allowed, "key X")
    logits = np.array([[0.0, -np.inf, -np.inf, 1.0], [0.0, 2.0, 1.0, 3.0]])
    masked = mask.apply(logits)
    assert masked[0, 0] == 0.0 and np.isneginf(masked[0, 1:]).all()  # <pad>: the piece ends
    assert np.isneginf(masked[1, [0, 3]]).all() and np.isfinite(masked[1, 1:3]).all()
    masked = mask.apply(np.array([[0.0, 5.0, 5.0, 1.0], [0.0, 2.0, 1.0, 3.0]]))
    assert masked[0, 0] == 0.0 and np.isneginf(masked[0, 1:]).all()  # and stays ended
    assert mask.warnings(0) == [
        "ended after 0 new tokens: the key X left nothing the model could write next"
    ]
    assert mask.warnings(1) == []


def test_no_constraint_no_mask() -> None:
    assert token_mask(["Pitch_60"], "remi", SamplingOptions()) is None


class _TopDraw:
    """An rng whose draw is the top of the range (a float rounding up to the total)."""

    def random(self, shape):
        return np.ones(shape)


def test_a_forbidden_last_token_is_never_picked() -> None:
    logits = np.array([[1.0, 2.0, 0.5, -np.inf]])
    picks = pick_tokens(logits, SamplingOptions(top_p=1.0), _TopDraw())
    assert picks.tolist() == [2]


# --- the command line, with the shipped model ----------------------------------------------


def test_cli_key_strict_with_the_shipped_model(tmp_path: Path, capsys) -> None:
    out = tmp_path / "d-minor.mid"
    argv = ["generate", "bach-chorales", "--key", "D-minor", "--key-strict", "--tokens", "400",
            "--seed", "3", "--pitch-range", "C3..C6", "-o", str(out)]  # fmt: skip
    assert main(argv) == 0
    pitches = pitched_notes(symusic.Score(str(out)))
    assert len(pitches) > 40 and {p % 12 for p in pitches} <= D_MINOR
    assert min(pitches) >= 48 and max(pitches) <= 84
    assert "warning" not in capsys.readouterr().out


@pytest.mark.parametrize(
    ("flags", "message"),
    [(["--key", "D-minor"], "trained with controls"),
     (["--instruments", "piano"], "this model's tokens name no instruments (--instruments)"),
     (["--key", "H-minor", "--key-strict"], "(--key)"),
     (["--pitch-range", "90..10"], "(--pitch-range)")],
)  # fmt: skip
def test_cli_refusals_are_one_line(tmp_path: Path, capsys, flags, message: str) -> None:
    assert main(["generate", "bach-chorales", *flags, "-o", str(tmp_path / "x.mid")]) == 1
    error = capsys.readouterr().err.strip()
    assert message in error and "\n" not in error
    assert not (tmp_path / "x.mid").exists()
