"""The default sampling chosen by the listening test: recorded in the checkpoint, read back
(hostile entries ignored), used by generation when no temperature or top-p is given."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from conftest import random_melody, write_midi

from lstm_music.cli import build_parser, main
from lstm_music.corpus.prepare import PrepareConfig, prepare
from lstm_music.errors import LstmMusicError
from lstm_music.evaluation import sampling_choice
from lstm_music.evaluation.listening import ListeningTest
from lstm_music.evaluation.sampling_choice import SamplingChoice, choose_sampling, record_choice
from lstm_music.generation.generate import generate
from lstm_music.generation.sampling import SamplingOptions, recorded_sampling
from lstm_music.model.checkpoint import Checkpoint, load_checkpoint, write_safetensors
from lstm_music.model.lstm import LSTMModel, ModelConfig
from lstm_music.model.shipped import shipped_model
from lstm_music.tokens import get_tokenizer

CHOSEN = {"temperature": 0.5, "top_p": 0.8, "chosen_by": "listening test on the valid split",
          "accuracy": 0.71, "candidates": [{"temperature": 0.5, "top_p": 0.8}]}  # fmt: skip


def tiny(path: Path, sampling=None, raw: bool = False) -> Path:
    """A random tiny REMI model saved at `path`, with `sampling` recorded (None: no entry at
    all, as checkpoints written before the choice existed; `raw`: written as it is)."""
    tokenizer = get_tokenizer("remi")
    words = ["<pad>", "<bos>", "<eos>", *tokenizer.base_vocabulary()]
    torch.manual_seed(0)
    model = LSTMModel(ModelConfig(len(words), 8, [16], 0.0)).eval()
    checkpoint = Checkpoint(model, tokenizer.to_config(), words, sampling=sampling or {})
    checkpoint.save(path)
    if sampling is None or raw:
        meta = json.loads(_meta(path))
        meta.pop("sampling")
        if sampling is not None:
            meta["sampling"] = sampling
        write_safetensors(path, model.state_dict(), meta)
    return path


def _meta(path: Path) -> str:
    from safetensors import safe_open

    with safe_open(str(path), "pt") as stored:
        return stored.metadata()["lstm_music"]


def tokens(checkpoint, **given) -> list[list[str]]:
    return [p.tokens for p in generate(checkpoint, SamplingOptions(tokens=40, seed=3, **given))]


def test_the_choice_is_stored_and_read_back(tmp_path) -> None:
    checkpoint = load_checkpoint(tiny(tmp_path / "m.safetensors", CHOSEN))
    assert checkpoint.sampling == CHOSEN


def test_an_old_checkpoint_loads_and_samples_at_the_defaults(tmp_path) -> None:
    old = load_checkpoint(tiny(tmp_path / "old.safetensors"))
    assert "sampling" not in json.loads(_meta(tmp_path / "old.safetensors"))
    assert old.sampling == {}
    assert tokens(old) == tokens(old, temperature=1.0, top_p=0.95)


@pytest.mark.parametrize("entry", [
    "hot", [0.5, 0.8], {"temperature": "0.5", "top_p": 0.8}, {"temperature": 0.5},
    {"temperature": 1e9, "top_p": 0.8}, {"temperature": 0.5, "top_p": 0},
    {"temperature": 0.5, "top_p": 1.5}, {"temperature": True, "top_p": 0.8},
    {"temperature": float("nan"), "top_p": 0.8}, {"temperature": None, "top_p": None},
])  # fmt: skip
def test_a_hostile_entry_is_ignored_for_the_defaults(tmp_path, entry) -> None:
    checkpoint = load_checkpoint(tiny(tmp_path / "hostile.safetensors", entry, raw=True))
    assert checkpoint.sampling == {}
    assert tokens(checkpoint) == tokens(checkpoint, temperature=1.0, top_p=0.95)


def test_odd_side_keys_are_dropped_and_the_choice_kept() -> None:
    kept = recorded_sampling({**CHOSEN, "accuracy": "high", "candidates": {"a": 1},
                              "chosen_by": 3})  # fmt: skip
    assert kept == {"temperature": 0.5, "top_p": 0.8}


def test_generation_uses_the_recorded_choice_and_given_values_win(tmp_path) -> None:
    chosen = load_checkpoint(tiny(tmp_path / "chosen.safetensors", CHOSEN))
    plain = load_checkpoint(tiny(tmp_path / "plain.safetensors"))
    assert tokens(chosen) == tokens(plain, temperature=0.5, top_p=0.8)
    assert tokens(chosen) != tokens(plain)  # the choice does change the music
    assert tokens(chosen, temperature=1.0, top_p=0.95) == tokens(plain)
    assert tokens(chosen, temperature=1.0) == tokens(plain, top_p=0.8)  # each value on its own
    options = SamplingOptions(tokens=10, seed=1)
    generate(chosen, options)
    assert options.temperature is None and options.top_p is None  # the caller's left unset


def test_the_cli_and_the_api_leave_the_sampling_to_the_model() -> None:
    from lstm_music.web.schemas import PieceRequest

    args = build_parser().parse_args(["generate", "-o", "x.mid"])
    assert args.temperature is None and args.top_p is None
    request = PieceRequest(model="base")
    assert request.temperature is None and request.top_p is None
    with pytest.raises(LstmMusicError):  # still checked when the options are made
        SamplingOptions(temperature=0)


def test_greedy_ignores_the_choice(tmp_path) -> None:
    chosen = load_checkpoint(tiny(tmp_path / "chosen.safetensors", CHOSEN))
    plain = load_checkpoint(tiny(tmp_path / "plain.safetensors"))
    assert tokens(chosen, greedy=True) == tokens(plain, greedy=True)


def fake_test(accuracy: float | None, half: float = 0.05) -> ListeningTest:
    if accuracy is None:
        return ListeningTest(2, 5, 8, 40, None, None, None, 0, 55, 4, "", "too few real pieces")
    return ListeningTest(20, 200, 8, 40, accuracy, accuracy - half, accuracy + half, 5, 55, 4,
                         "words")  # fmt: skip


@pytest.mark.parametrize(("figures", "expected"), [
    ({(1.0, 0.95): 0.90, (0.8, 0.95): 0.86, (0.9, 0.9): 0.87}, (1.0, 0.95)),  # within the noise
    ({(1.0, 0.95): 0.90, (0.8, 0.95): 0.80, (0.9, 0.9): 0.70}, (0.9, 0.9)),  # the lowest, clearly
    ({(1.0, 0.95): 0.90, (0.8, 0.95): None, (0.9, 0.9): 0.92}, (1.0, 0.95)),  # refused: not chosen
])  # fmt: skip
def test_the_default_is_kept_unless_another_is_clearly_lower(monkeypatch, figures, expected):
    def fake(checkpoint, corpus, split, options, seed, real):
        return fake_test(figures[(options.temperature, options.top_p)])

    monkeypatch.setattr(sampling_choice, "model_listening_test", fake)
    monkeypatch.setattr(sampling_choice, "real_refusal", lambda real: None)
    monkeypatch.setattr("lstm_music.evaluation.pieces.load_reference", lambda c, s: [])
    choice = choose_sampling(None, None, candidates=list(figures))
    assert choice.chosen and (choice.temperature, choice.top_p) == expected
    assert choice.margin == pytest.approx(0.05)  # the default's interval half-width
    assert len(choice.record()["candidates"]) == 3


def corpus_of(root: Path, pieces: int, valid: float):
    for i in range(pieces):
        write_midi(root / "midi" / f"{i}.mid", random_melody(i, length=96))
    config = PrepareConfig(inputs=[str(root / "midi")], out=str(root / "corpus"),
                           valid_fraction=valid)  # fmt: skip
    return prepare(config, progress=False).corpus


def test_the_choice_runs_on_a_real_model_and_refuses_a_small_valid_split(tmp_path) -> None:
    base = load_checkpoint("base")
    corpus = corpus_of(tmp_path / "big", 12, 0.5)
    choice = choose_sampling(base, corpus, candidates=[(1.0, 0.95), (0.8, 0.9)])
    assert choice.chosen, choice.refused
    assert (choice.temperature, choice.top_p) in [(1.0, 0.95), (0.8, 0.9)]
    assert all(c.test.ran for c in choice.candidates) and 0 <= choice.accuracy <= 1
    small = corpus_of(tmp_path / "small", 4, 0.25)
    refused = choose_sampling(base, small)
    assert not refused.chosen and "too few real" in refused.refused
    assert refused.candidates == ()  # known from the valid split alone: nothing sampled
    with pytest.raises(LstmMusicError, match="no sampling was chosen"):
        refused.record()
    with pytest.raises(LstmMusicError, match="never on the test split"):
        choose_sampling(base, corpus, split="test")


def test_evaluate_writes_the_choice_into_a_copy_and_refuses_a_shipped_model(
    tmp_path, monkeypatch, capsys
) -> None:
    copy = tmp_path / "base.safetensors"
    shutil.copy(shipped_model("base").path, copy)
    corpus = corpus_of(tmp_path, 4, 0.5)
    chosen = SamplingChoice(0.9, 0.9, 0.8, 0.04, ())
    monkeypatch.setattr(sampling_choice, "choose_sampling", lambda *a: chosen)
    assert main(["evaluate", str(copy), str(corpus.path), "--choose-sampling"]) == 0
    assert "chosen: temperature 0.9, top-p 0.9" in capsys.readouterr().out
    reread = load_checkpoint(copy)
    assert reread.sampling["temperature"] == 0.9 and reread.sampling["top_p"] == 0.9
    assert sampling_choice._stored_half(copy)  # the weights kept as shipped: float16
    assert main(["evaluate", "base", str(corpus.path), "--choose-sampling"]) == 1
    assert "copy it out first" in capsys.readouterr().err
    assert load_checkpoint("base").sampling == {}
    with pytest.raises(LstmMusicError, match="shipped inside"):
        record_choice(load_checkpoint("base"), chosen)


def test_train_chooses_and_records_the_default_sampling(tmp_path, monkeypatch) -> None:
    """A run whose valid split can hold the test ends with its best checkpoint's sampling
    chosen by it, before the report, which reuses the chosen candidate's test (the same
    pieces, seed and sampling) rather than sampling it again."""
    import lstm_music.evaluation.report as report_module

    tests = []
    real_test = sampling_choice.model_listening_test

    def counted(*args, **kwargs):
        tests.append(1)
        return real_test(*args, **kwargs)

    monkeypatch.setattr(sampling_choice, "model_listening_test", counted)
    monkeypatch.setattr(report_module, "model_listening_test", counted)
    from lstm_music.training.run import train
    from lstm_music.training.settings import TrainConfig

    corpus = corpus_of(tmp_path / "c", 12, 0.5)
    config = TrainConfig(embedding_dim=32, hidden_sizes=[48], window=32, batch_size=4,
                         max_steps=150, warmup_steps=5, device="cpu", threads=1)  # fmt: skip
    result = train(corpus.path, tmp_path / "run", config, progress=False, report=True)
    chosen = load_checkpoint(tmp_path / "run").sampling
    assert chosen.get("chosen_by") == "listening test on the valid split", result.notes
    assert len(chosen["candidates"]) == len(sampling_choice.CANDIDATES)
    assert any(note.startswith("default sampling chosen by the listening test") for note in
               result.notes)  # fmt: skip
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["listening"]["ran"]
    assert len(tests) == len(sampling_choice.CANDIDATES)  # none more for the report
    assert report["listening"]["accuracy"] == chosen["accuracy"]


def test_the_choice_at_the_end_of_training_fits_the_time_left(monkeypatch, tmp_path) -> None:
    """Short of time, fewer candidates (today's default first); too short for two, none, with
    a note; no budget, all six."""
    import types

    import lstm_music.training.closing as closing

    asked: list[int] = []
    chosen = SamplingChoice(1.0, 0.95, 0.8, 0.04, ())

    def fake(checkpoint, corpus, split, candidates):
        asked.append(len(candidates))
        assert candidates[0] == sampling_choice.CANDIDATES[0] and split == "valid"
        return chosen

    monkeypatch.setattr(closing, "choose_sampling", fake)
    monkeypatch.setattr(closing, "split_refusal", lambda corpus, split: None)
    monkeypatch.setattr(closing, "load_checkpoint", lambda *a: None)
    monkeypatch.setattr(closing, "record_choice", lambda *a: None)
    notes: list[str] = []
    trainer = types.SimpleNamespace(note=notes.append, run_dir=tmp_path, corpus=None,
                                    runtime=types.SimpleNamespace(device="cpu"))  # fmt: skip
    per_token = 1e-4
    one = closing.choice_seconds(per_token, 1)
    closing.choose_default_sampling(trainer, per_token, 3.5 * one)
    closing.choose_default_sampling(trainer, per_token, 1.5 * one)
    closing.choose_default_sampling(trainer, per_token, None)
    assert asked == [3, len(sampling_choice.CANDIDATES)]
    assert "cut to fit the time budget: 3 candidates" in notes[0]
    assert notes[2].startswith("the default sampling was not chosen")


def test_a_small_valid_split_is_said_before_any_time_question(tmp_path) -> None:
    """Three valid pieces cannot hold the test: the note says so, not that time was short."""
    import types

    import lstm_music.training.closing as closing

    notes: list[str] = []
    trainer = types.SimpleNamespace(note=notes.append, run_dir=tmp_path,
                                    corpus=corpus_of(tmp_path / "small", 4, 0.25),
                                    runtime=types.SimpleNamespace(device="cpu"))  # fmt: skip
    closing.choose_default_sampling(trainer, 1e-4, 0.0)
    assert len(notes) == 1 and notes[0].startswith("the default sampling was kept: the listening")
    assert "too few real" in notes[0]
