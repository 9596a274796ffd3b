"""Attribute controls: `prepare --controls` writes MidiTok's bar-level control tokens (dropped at
random), a tiny model trained on them takes `--density`, `--polyphony`, `--key` (and `--tempo`,
`--instruments`) at generation, and a control the model was not trained with is refused in one
line. Every fixture is made here; models are tiny (hidden 32, 20 steps)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import random_melody, write_midi
from test_instruments import BASS, PIANO, STRINGS, band, check_channels, per_instrument

from lstm_music.cli import main
from lstm_music.corpus.prepare import PrepareConfig
from lstm_music.corpus.store import Corpus
from lstm_music.errors import LstmMusicError, SettingError
from lstm_music.generation.controls import parse_density, parse_polyphony
from lstm_music.generation.generate import generate
from lstm_music.generation.masks import parse_key
from lstm_music.tokens import (
    TokenizerError,
    check_tokenizer_config,
    get_tokenizer,
    tokenizer_for_tracks,
    tokenizer_from_config,
    understood_controls,
)
from lstm_music.tokens.controls import density_levels, parse_controls

COMPAT = Path(__file__).parent / "fixtures" / "compat" / "checkpoint.safetensors"
ALL = ["polyphony", "key", "density"]
STEPS = 30
HEADER = ["Bar_None", "TimeSig_4/4"]  # a primer ending on a bar header: its bar is steered


def _train(corpus: Path, run: Path):
    from lstm_music.model.checkpoint import load_checkpoint
    from lstm_music.training.run import train
    from lstm_music.training.settings import TrainConfig

    config = TrainConfig(embedding_dim=16, hidden_sizes=[32], window=32, batch_size=2,
                         max_steps=STEPS, device="cpu", transpose="-2..2")  # fmt: skip
    train(corpus, run, config, progress=False)
    return load_checkpoint(run / "best.safetensors")  # the header checks pass


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, object]:
    """A piano model with every control, a band (instruments) model with key, density and
    instruments."""
    root = tmp_path_factory.mktemp("controls")
    for i in range(6):
        write_midi(root / "piano" / f"p{i}.mid", random_melody(i, 64))
        write_midi(root / "band" / f"b{i}.mid", band(i, 8))
    assert main(["prepare", str(root / "piano"), "--out", str(root / "pc"), "--controls",
                 "default", "-q", "-j", "1"]) == 0  # fmt: skip
    assert main(["prepare", str(root / "band"), "--out", str(root / "bc"), "--controls",
                 "key,density,instruments", "--tracks", "instruments", "-q", "-j",
                 "1"]) == 0  # fmt: skip
    return {"piano": _train(root / "pc", root / "pr"), "band": _train(root / "bc", root / "br"),
            "piano_corpus": Corpus.load(root / "pc"), "root": root}  # fmt: skip


def _bars(tokens: list[str]) -> list[list[str]]:
    """The control tokens after each bar header (`Bar`, then `TimeSig`: this tokenizer writes
    time signatures, so a `TimeSig` token ends a header) that has room for them."""
    bars = []
    for i, token in enumerate(tokens[: len(tokens) - 20]):  # too near the end: may be cut
        if token.startswith("TimeSig_"):
            end = i + 1
            while end < len(tokens) and tokens[end].startswith("AC"):
                end += 1
            bars.append(tokens[i + 1 : end])
    return bars


def _plain_bars(tokens: list[str]) -> list[list[str]]:
    """The control tokens after each `Bar`/`TimeSig` pair of a training sequence."""
    return [bar for bar in _bars(tokens + ["-"] * 20)]


def test_control_tokens_sit_where_miditok_puts_them() -> None:
    """Kept on every bar, our tokens are MidiTok's own `encode(attribute_controls_indexes=)`."""
    from lstm_music.tokens.miditok_adapter import import_miditok

    tokenizer = tokenizer_for_tracks("remi", "merge", ALL)
    tokenizer.controls = {**tokenizer.controls, "keep_bar": 1.0, "keep_piece": 1.0}
    score = random_melody(5, 64)
    ours = tokenizer.encode(score)
    miditok = import_miditok()
    theirs = miditok.REMI(tokenizer._tokenizer.config)
    from lstm_music.tokens.midi import merge_tracks

    merged = theirs.preprocess_score(merge_tracks(score, list(score.tracks)))
    bars = len(miditok.utils.get_bars_ticks(merged, only_notes_onsets=True))
    every = {0: {i: list(range(bars)) for i in range(len(theirs.attribute_controls))}}
    expected = theirs.encode(merged, no_preprocess_score=True, attribute_controls_indexes=every)
    assert ours == expected[0].tokens
    assert sum(t.startswith("ACBarNoteDensity") for t in ours) >= bars - 1  # all but lone notes


def test_controls_are_dropped_at_random_and_the_same_every_time() -> None:
    tokenizer = tokenizer_for_tracks("remi", "merge", ALL)
    seqs = [tokenizer.encode(random_melody(i, 64)) for i in range(16)]
    assert seqs == [tokenizer.encode(random_melody(i, 64)) for i in range(16)]  # seeded
    with_none = [s for s in seqs if not any(t.startswith("AC") for t in s)]
    assert 0 < len(with_none) < len(seqs)  # a share of pieces carries no control
    bars = [bar for s in seqs if s not in with_none for bar in _plain_bars(s)]
    densities = [any(t.startswith("ACBarNoteDensity") for t in bar) for bar in bars]
    assert 0.2 < sum(densities) / len(densities) < 0.8  # about half the bars
    plain = [t for t in seqs[0] if not t.startswith("AC")]
    assert plain == get_tokenizer("remi").encode(random_melody(0, 64))  # the music unchanged


def test_default_prepare_is_unchanged(tmp_path: Path) -> None:
    config = PrepareConfig(inputs=["x"], out=str(tmp_path / "c"))
    assert (
        config.controls == []
        and config.make_tokenizer().to_config() == get_tokenizer("remi").to_config()
    )
    assert "controls" not in config.make_tokenizer().to_config()["params"]
    write_midi(tmp_path / "m" / "a.mid", random_melody(1))
    assert main(["prepare", str(tmp_path / "m"), "--out", str(tmp_path / "c"), "-q"]) == 0
    meta = json.loads((tmp_path / "c" / "corpus.json").read_text())
    assert "controls" not in meta["config"] and understood_controls(meta["tokenizer"]) == ()


def test_the_corpus_records_controls_and_density_levels(models) -> None:
    corpus = models["piano_corpus"]
    assert understood_controls(corpus.tokenizer_config) == tuple(ALL)
    low, medium, high = corpus.tokenizer_config["params"]["controls"]["density_levels"]
    assert low <= medium <= high and high > 0
    config = corpus.tokenizer_config["params"]["config"]
    assert config["ac_note_density_bar"] and config["ac_pitch_class_bar"]
    assert understood_controls(models["band"].tokenizer_config) == ("key", "density", "instruments")
    band_controls = models["band"].tokenizer_config["params"]["controls"]
    assert sorted(band_controls["programs"]) == sorted([-1, BASS, PIANO, STRINGS])
    assert density_levels({"ACBarNoteDensity_2": 1, "ACBarNoteDensity_8": 3,
                           "ACBarNoteDensity_32+": 6}) == [2, 32, 32]  # fmt: skip


def test_pitch_class_controls_move_with_transposition() -> None:
    tokenizer = tokenizer_for_tracks("remi", "merge", ["key"])
    assert tokenizer.transpose_token("ACBarPitchClass_11", 2) == "ACBarPitchClass_1"
    assert tokenizer.transpose_token("ACBarNoteDensity_5", 2) == "ACBarNoteDensity_5"


@pytest.mark.parametrize(
    "settings",
    [{"density": "low"}, {"density": "high"}, {"density": 6}, {"polyphony": 2},
     {"polyphony": "1..3"}, {"key": "D-minor"}, {"key": "D-minor", "key_strict": True},
     {"tempo": 90.0}, {"density": "medium", "polyphony": 3, "key": "G-major"}],
)  # fmt: skip
def test_each_control_steers_every_bar_and_writes_midi(models, settings, tmp_path) -> None:
    from lstm_music.generation.pipeline import PieceFiles, write_pieces
    from lstm_music.generation.sampling import SamplingOptions
    from lstm_music.tokens.midi import read_score

    options = SamplingOptions(tokens=400, num=2, seed=2, primer=HEADER, **settings)
    written = write_pieces(models["piano"], options, lambda i: PieceFiles(tmp_path / f"{i}.mid"))
    key = parse_key(settings["key"]) if "key" in settings else None
    for piece in written.pieces:
        bars = _bars(piece.tokens)
        assert bars  # the primer's bar at least
        for bar in bars:
            pcs = sorted(int(t.split("_")[1]) for t in bar if t.startswith("ACBarPitchClass"))
            assert pcs == (sorted(key.pitch_classes) if key else [])
            assert any(t.startswith("ACBarNoteDensity") for t in bar) == ("density" in settings)
            assert any(t.startswith("ACBarOnsetPolyphonyMax") for t in bar) == (
                "polyphony" in settings
            )
        if settings.get("density") == 6:
            assert "ACBarNoteDensity_6" in bars[0]
        if settings.get("polyphony") == 2:
            assert bars[0] == ["ACBarOnsetPolyphonyMin_1", "ACBarOnsetPolyphonyMax_2"]
        score = read_score(piece.files.midi.read_bytes())  # passes our own reading checks
        assert score.note_num() == piece.notes
        if settings.get("key_strict"):
            assert all(n.pitch % 12 in key.pitch_classes for t in score.tracks for n in t.notes)
        if "tempo" in settings:
            assert abs(score.tempos[0].qpm - settings["tempo"]) < 0.5
    assert sum(piece.notes for piece in written.pieces) > 0


def test_without_controls_the_model_writes_none(models) -> None:
    [piece] = generate(models["piano"], tokens=200, seed=1)
    assert not any(token.startswith("AC") for token in piece.tokens)


def test_a_multi_track_model_takes_controls_and_writes_multi_track_midi(models, tmp_path) -> None:
    out = tmp_path / "band.mid"
    assert main(["generate", str(models["root"] / "br"), "--key", "E-minor", "--density",
                 "high", "--instruments", "bass,piano,drums", "--tempo", "100", "--tokens",
                 "500", "--seed", "4", "-o", str(out)]) == 0  # fmt: skip
    score = check_channels(out.read_bytes())
    assert set(per_instrument(score)) <= {-1, *range(8), *range(32, 40)} and score.note_num() > 0
    assert abs(score.tempos[0].qpm - 100) < 0.5


@pytest.mark.parametrize(
    ("model", "flags", "message"),
    [("compat", ["--density", "low"], "density is a control for a model trained with controls "
      "including density; this one was trained without controls (--density)"),
     ("compat", ["--polyphony", "3"], "this one was trained without controls (--polyphony)"),
     ("compat", ["--key", "D-minor"], "trained with controls"),
     ("band", ["--polyphony", "3"], "understands key, density, instruments (--polyphony)")],
)  # fmt: skip
def test_a_control_the_model_lacks_is_refused_in_one_line(
    models, tmp_path: Path, capsys, model, flags, message
) -> None:
    checkpoint = str(COMPAT if model == "compat" else models["root"] / "br")
    assert main(["generate", checkpoint, *flags, "-o", str(tmp_path / "x.mid")]) == 1
    error = capsys.readouterr().err.strip()
    assert message in error and "\n" not in error
    assert not (tmp_path / "x.mid").exists()


def test_the_instruments_control_opens_each_piece_and_changes_no_music() -> None:
    tokenizer = tokenizer_for_tracks("remi", "instruments", ["instruments"])
    tokenizer.controls = {**tokenizer.controls, "keep_bar": 1.0, "keep_piece": 1.0}
    score = band(3, 4)
    tokens = tokenizer.encode(score)
    wanted = [f"ACPieceProgram_{p}" for p in sorted([-1, BASS, PIANO, STRINGS])]
    assert tokens[: len(wanted)] == wanted and not tokens[len(wanted)].startswith("AC")
    assert {*wanted, "ACPieceProgram_127"} <= set(tokenizer.base_vocabulary())
    plain = tokenizer_for_tracks("remi", "instruments").encode(score)
    assert tokens[len(wanted) :] == plain  # the music's tokens unchanged
    assert per_instrument(tokenizer.decode(tokens)) == per_instrument(tokenizer.decode(plain))
    assert tokenizer.transpose_token(wanted[1], 3) == wanted[1]  # programs don't transpose
    dropped = [tokenizer_for_tracks("remi", "instruments", ["instruments"]).encode(band(i, 2))
               for i in range(24)]  # fmt: skip
    opened = sum(s[0].startswith("ACPieceProgram") for s in dropped)
    assert 0 < opened < len(dropped)  # dropped at random, so generation works without it


def test_the_instruments_control_steers_the_instruments(models) -> None:
    """Asked for bass and piano, the model is told so first and writes those two only."""
    asked = ("bass", "piano")
    [piece] = generate(models["band"], tokens=300, seed=2, instruments=asked)
    # program order; "bass" is the corpus's bass (33), not the family's first (32)
    assert piece.tokens[:2] == [f"ACPieceProgram_{PIANO}", f"ACPieceProgram_{BASS}"]
    assert set(per_instrument(piece.score)) <= {*range(0, 8), *range(32, 40)}
    assert not any(t.startswith("ACPieceProgram") for t in piece.tokens[2:])


def test_tempo_tokens_keep_to_the_asked_tempo() -> None:
    """A tokenizer with tempo tokens: every tempo sampled is the nearest to the asked one."""
    import torch

    from lstm_music.corpus.store import SPECIAL_TOKENS
    from lstm_music.model.checkpoint import Checkpoint
    from lstm_music.model.lstm import LSTMModel, ModelConfig

    tokenizer = get_tokenizer("remi", config={"use_tempos": True, "num_tempos": 8})
    words = [*SPECIAL_TOKENS, *tokenizer.base_vocabulary()]
    tempos = sorted(float(t.split("_")[1]) for t in words if t.startswith("Tempo_"))
    assert len(tempos) > 2
    torch.manual_seed(0)
    model = LSTMModel(ModelConfig(len(words), 8, [16], 0.0)).eval()
    checkpoint = Checkpoint(model, tokenizer.to_config(), words)
    free = generate(checkpoint, tokens=400, seed=3)[0]
    assert len({t for t in free.tokens if t.startswith("Tempo_")}) > 1  # it samples several
    [piece] = generate(checkpoint, tokens=400, seed=3, tempo=100)
    nearest = min(tempos, key=lambda value: abs(value - 100))
    sampled = {float(t.split("_")[1]) for t in piece.tokens if t.startswith("Tempo_")}
    assert sampled <= {nearest}


def test_with_a_primer_the_instruments_open_the_piece_and_its_controls_go(models) -> None:
    """The instruments control comes first, before the primer, as in training; a primer's
    own control tokens (a file read with dropout) are left out: the asked ones are forced."""
    corpus = Corpus.load(models["root"] / "bc")
    primer = [t for t in corpus.pieces[0].tokens[:60]]
    primer = ["ACBarNoteDensity_3", *[t for t in primer if not t.startswith("AC")]]
    [piece] = generate(models["band"], tokens=120, seed=1, primer=primer,
                       instruments=("bass", "piano"), guidance=2.0)  # fmt: skip
    opening = [f"ACPieceProgram_{PIANO}", f"ACPieceProgram_{BASS}"]
    assert piece.tokens[:2] == opening and piece.primer_length == 2 + len(primer) - 1
    assert piece.tokens[2 : piece.primer_length] == primer[1:]
    assert not any(t.startswith("ACPieceProgram") for t in piece.tokens[2:])


def test_corpus_statistics_are_no_tokenizer_difference(models) -> None:
    """Density levels and instruments by notes are measured on a corpus: a model and another
    corpus of the same settings may differ in them (fine-tuning, primers, evaluation)."""
    from types import SimpleNamespace

    from lstm_music.model.checkpoint import check_corpus_fits

    checkpoint = models["band"]
    real = Corpus.load(models["root"] / "bc")
    params = real.tokenizer_config["params"]
    controls = {**params["controls"], "density_levels": [1, 2, 3], "programs": [5]}

    def corpus_with(controls: dict) -> SimpleNamespace:
        config = {**real.tokenizer_config, "params": {**params, "controls": controls}}
        return SimpleNamespace(tokenizer_config=config, vocabulary=real.vocabulary, path=real.path)

    check_corpus_fits(checkpoint, corpus_with(controls))  # no refusal
    with pytest.raises(LstmMusicError, match="keep_bar"):
        check_corpus_fits(checkpoint, corpus_with({**controls, "keep_bar": 0.9}))


def test_a_run_saved_before_validation_left_controls_out_chooses_its_best_afresh() -> None:
    from lstm_music.training.resume import VALID_SCORING, rescore_older_best

    old = {"best": 0.5, "bad_evals": 2}
    assert "chosen afresh" in rescore_older_best(old, ["Bar_None", "ACBarNoteDensity_3"])
    assert old["best"] is None and old["bad_evals"] == 0 and old["valid_scoring"] == VALID_SCORING
    plain = {"best": 0.5, "bad_evals": 2}
    assert rescore_older_best(plain, ["Bar_None", "Pitch_60"]) == "" and plain["best"] == 0.5
    new = {"best": 0.5, "bad_evals": 1, "valid_scoring": VALID_SCORING}
    assert rescore_older_best(new, ["ACBarNoteDensity_3"]) == "" and new["best"] == 0.5


def test_the_unsteered_state_reads_the_music_without_the_controls(models) -> None:
    """Guidance's second state, fed a batch where some rows write control tokens, is the model
    run on each row's tokens with the control tokens taken out."""
    import numpy as np

    from lstm_music.generation.guidance import Unsteered
    from lstm_music.generation.stepper import FastStepper

    checkpoint = models["piano"]
    vocabulary = checkpoint.vocabulary
    controls = np.array([t.startswith("AC") for t in vocabulary])
    stepper = FastStepper(checkpoint.model)
    start = stepper.convert_state(checkpoint.model.init_state(2))
    first, state = stepper.step(np.array([1, 1]), start)  # <bos>
    unsteered = Unsteered(stepper, state, first, controls)
    ids = {t: i for i, t in enumerate(vocabulary)}
    rows = [["Bar_None", "ACBarNoteDensity_9", "Position_0", "Pitch_60"],
            ["Bar_None", "Position_0", "ACBarPitchClass_2", "Pitch_62"]]  # fmt: skip
    for column in range(4):
        unsteered.observe(np.array([ids[row[column]] for row in rows]), lambda x: x)
    for row, tokens in enumerate(rows):
        plain = [ids[t] for t in tokens if not t.startswith("AC")]
        state = stepper.convert_state(checkpoint.model.init_state(1))
        logits, state = stepper.step(np.array([1]), state)
        for token in plain:
            logits, state = stepper.step(np.array([token]), state)
        assert np.allclose(unsteered.logits[row], logits[0], atol=1e-5)


def test_guidance_pushes_the_controls_and_is_off_at_one(models, tmp_path, capsys) -> None:
    asked = {"tokens": 300, "seed": 5, "density": "high"}
    plain = generate(models["piano"], **asked)[0].tokens
    assert generate(models["piano"], **asked, guidance=1.0)[0].tokens == plain  # off
    assert generate(models["piano"], **asked, guidance=3.0)[0].tokens != plain
    free = generate(models["piano"], tokens=300, seed=5)[0].tokens  # nothing asked: no effect
    assert generate(models["piano"], tokens=300, seed=5, guidance=3.0)[0].tokens == free
    out = tmp_path / "g.mid"
    assert main(["generate", str(models["root"] / "pr"), "--density", "low", "--guidance",
                 "2.5", "--tokens", "200", "-o", str(out)]) == 0  # fmt: skip
    assert out.exists()
    assert main(["generate", str(models["root"] / "pr"), "--guidance", "20", "-o",
                 str(tmp_path / "x.mid")]) == 1  # fmt: skip
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert "guidance must be a number from 1 to 8" in error


def test_bad_control_settings_are_refused() -> None:
    assert parse_controls("default") == ALL and parse_controls("key, density") == ["key", "density"]
    assert parse_controls("default", instruments=True) == [*ALL, "instruments"]
    assert parse_density("High") == "high" and parse_density("12") == 12
    assert parse_polyphony(3) == (1, 3) and parse_polyphony("2..4") == (2, 4)
    for call, setting in [(lambda: parse_controls("loudness"), "controls"),
                          (lambda: parse_density("lots"), "density"),
                          (lambda: parse_controls("instruments"), "controls"),
                          (lambda: parse_polyphony("4..2"), "polyphony"),
                          (lambda: PrepareConfig(["x"], "y", tokenizer="tsd", controls=["key"]),
                           "controls"),
                          (lambda: PrepareConfig(["x"], "y", tokenizer="seed", controls="default"),
                           "controls")]:  # fmt: skip
        with pytest.raises(SettingError) as error:
            call()
        assert error.value.setting == setting and "\n" not in str(error.value)


def test_crafted_control_parameters_are_refused(models) -> None:
    config = models["piano"].tokenizer_config
    controls = config["params"]["controls"]
    bad_ones = ({**controls, "names": ["loudness"]}, {**controls, "keep_bar": 2},
                {**controls, "density_levels": [1, 2]}, {**controls, "x": 1}, "all",
                {**controls, "programs": [200]})  # fmt: skip
    for bad in bad_ones:
        crafted = {**config, "params": {**config["params"], "controls": bad}}
        with pytest.raises(TokenizerError):
            check_tokenizer_config(crafted)
    rebuilt = tokenizer_from_config(config).to_config()  # the real one rebuilds, levels and all
    assert json.loads(json.dumps(rebuilt)) == config


def test_held_out_pieces_are_scored_without_their_controls(models) -> None:
    """`evaluate` and the report score the music as generation without controls meets it."""
    from lstm_music.evaluation.likelihood import evaluate_split, without_controls
    from lstm_music.tokens.controls import is_control

    corpus, checkpoint = models["piano_corpus"], models["piano"]
    pieces = [p.ids for p in corpus.split("valid")]
    stripped = without_controls(corpus.vocabulary, pieces)
    removed = sum(len(a) - len(b) for a, b in zip(pieces, stripped))
    assert removed > 0 and not any(is_control(corpus.vocabulary[i]) for s in stripped for i in s)
    assert without_controls(["Pitch_60", "Bar_None"], pieces) is pieces  # nothing to take out
    scored = evaluate_split(checkpoint, corpus, "valid")
    assert scored["tokens"] == sum(len(s) + 1 for s in stripped)
