"""The held-out report: yardsticks computed by hand, warnings when they should, JSON, the CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import random_melody, write_midi

from lstm_music.cli import main
from lstm_music.cli.report_view import report_lines
from lstm_music.corpus.prepare import PrepareConfig, prepare
from lstm_music.corpus.store import EOS_ID, Corpus
from lstm_music.errors import SettingError
from lstm_music.evaluation import verdict
from lstm_music.evaluation.likelihood import evaluate_split, score_pieces
from lstm_music.evaluation.report import (
    HeldOutReport,
    held_out_report,
    training_sample,
    unigram_nll,
)
from lstm_music.model.checkpoint import Checkpoint
from lstm_music.model.lstm import LSTMModel, ModelConfig


def corpus_of(
    root: Path, pieces: int = 4, valid: float = 0.5, test: float = 0.0, length: int = 16
) -> Corpus:
    for i in range(pieces):
        write_midi(root / "midi" / f"{i}.mid", random_melody(i, length=length))
    config = PrepareConfig(inputs=[str(root / "midi")], out=str(root / "corpus"),
                           valid_fraction=valid, test_fraction=test)  # fmt: skip
    return prepare(config, progress=False).corpus


def bias_model(vocab: int, bias: np.ndarray | None = None, seed: int = 0) -> LSTMModel:
    """Every weight zero but the output bias: each position predicts softmax(bias)."""
    model = LSTMModel(ModelConfig(vocab, 4, [6], 0.0))
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.zero_()
        if bias is None:
            bias = torch.randn(vocab, generator=torch.Generator().manual_seed(seed)).numpy()
        model.head.bias.copy_(torch.as_tensor(bias, dtype=torch.float32))
    return model.eval()


def checkpoint_of(corpus: Corpus, model: LSTMModel) -> Checkpoint:
    return Checkpoint(model, corpus.tokenizer_config, corpus.vocabulary)


def targets_of(pieces: list[np.ndarray]) -> np.ndarray:
    return np.concatenate([np.append(ids, EOS_ID) for ids in pieces])


def test_unigram_is_the_smoothed_training_frequency_of_every_target() -> None:
    train = [np.array([4, 4, 5]), np.array([4])]
    held_out = [np.array([5, 6])]
    # over V = 7, one added to each count: id 4 seen 3 times, id 5 once, id 6 never, <eos> (id 2)
    # once per training piece: 4 + 2 + 1 + 3 + 3 others = 13
    counts = np.ones(7)
    counts[4] += 3
    counts[5] += 1
    counts[EOS_ID] += 2
    expected = -(np.log(counts[5] / counts.sum()) + np.log(counts[6] / counts.sum())
                 + np.log(counts[EOS_ID] / counts.sum()))  # fmt: skip
    totals = unigram_nll(train, held_out, 7)
    assert totals.tokens == 3 and counts.sum() == 13
    assert totals.nll == pytest.approx(expected)


def test_the_figures_are_the_model_unigram_and_uniform_on_the_same_targets(tmp_path) -> None:
    corpus = corpus_of(tmp_path)
    checkpoint = checkpoint_of(corpus, bias_model(len(corpus.vocabulary)))
    report = held_out_report(checkpoint, corpus)
    valid = corpus.split("valid")
    ids = [p.ids for p in valid]
    notes = sum(p.info.notes for p in valid)
    vocab = len(corpus.vocabulary)
    targets = targets_of(ids)
    assert report.split == "valid" and report.pieces == len(valid)
    assert report.tokens == len(targets) and report.notes == notes > 0
    assert [p.name for p in report.predictors] == ["model", "unigram", "uniform"]
    model = score_pieces(checkpoint.model, ids)
    assert report.predictor("model").bits_per_note == pytest.approx(model.nll / math.log(2) / notes)
    uniform = report.predictor("uniform")
    assert uniform.bits_per_token == pytest.approx(math.log2(vocab))
    assert uniform.bits_per_note == pytest.approx(len(targets) * math.log2(vocab) / notes)
    counts = np.ones(vocab) + np.bincount(targets_of([p.ids for p in corpus.split("train")]),
                                          minlength=vocab)  # fmt: skip
    hand = -np.log(counts[targets] / counts.sum()).sum() / math.log(2) / notes
    assert report.predictor("unigram").bits_per_note == pytest.approx(hand)
    assert report.saving("unigram") == pytest.approx(
        1 - report.predictor("model").nll_per_token / report.predictor("unigram").nll_per_token
    )


def test_few_held_out_pieces_are_warned_of_and_enough_are_not(tmp_path) -> None:
    few = corpus_of(tmp_path / "few")
    report = held_out_report(checkpoint_of(few, bias_model(len(few.vocabulary))), few)
    assert any("fewer than 5" in w for w in report.warnings)
    assert "only 2 held-out pieces" in report.verdict
    many = corpus_of(tmp_path / "many", pieces=12)
    assert len(many.split("valid")) >= 5
    report = held_out_report(checkpoint_of(many, bias_model(len(many.vocabulary))), many)
    assert not any("fewer than 5" in w for w in report.warnings)
    assert "held-out piece" not in report.verdict


def test_a_model_fitted_to_its_training_tokens_is_called_overfitting(tmp_path) -> None:
    from lstm_music.corpus.discover import assign_splits

    names = [f"{i}.mid" for i in range(12)]
    splits = assign_splits(names, 0.5, 0.0, PrepareConfig.seed)
    for i, name in enumerate(names):  # held-out pieces an octave and more above the others
        score = random_melody(i, length=16)
        write_midi(tmp_path / "midi" / name, score.shift_pitch(20 * (splits[name] == "valid")))
    config = PrepareConfig(inputs=[str(tmp_path / "midi")], out=str(tmp_path / "corpus"),
                           valid_fraction=0.5)  # fmt: skip
    corpus = prepare(config, progress=False).corpus
    vocab = len(corpus.vocabulary)
    counts = np.bincount(targets_of([p.ids for p in corpus.split("train")]), minlength=vocab)
    # the training split's own token frequencies: tokens it lacks are nearly impossible
    fitted = bias_model(vocab, np.log(counts + 1e-4))
    report = held_out_report(checkpoint_of(corpus, fitted), corpus)
    assert report.gap is not None and report.gap.train_tokens > 0
    assert report.gap.overfitting and report.gap.gap > verdict.OVERFIT_GAP
    assert any(w.startswith("overfitting") for w in report.warnings)
    assert "but overfitting" in report.verdict
    flat = held_out_report(checkpoint_of(corpus, bias_model(vocab, np.zeros(vocab))), corpus)
    assert flat.gap.gap == pytest.approx(0.0, abs=1e-5) and not flat.gap.overfitting
    assert not any(w.startswith("overfitting") for w in flat.warnings)
    assert flat.verdict.startswith("poor")  # a uniform guess is worse than the unigram's


def test_the_training_sample_is_fixed_and_capped() -> None:
    class Piece:
        def __init__(self, n: int) -> None:
            self.ids = np.arange(n)

    pieces = [Piece(n) for n in (50, 30, 80, 10)]
    first, again = training_sample(pieces, 100), training_sample(pieces, 100)
    assert sum(len(ids) for ids in first) == 100
    assert [len(ids) for ids in first] == [len(ids) for ids in again]
    assert sum(len(ids) for ids in training_sample(pieces, 10_000)) == 170


def test_the_base_model_is_compared_when_it_reads_the_corpus(tmp_path) -> None:
    corpus = corpus_of(tmp_path)
    vocab = len(corpus.vocabulary)
    checkpoint = checkpoint_of(corpus, bias_model(vocab, seed=1))
    base = checkpoint_of(corpus, bias_model(vocab, seed=2))
    base.path = tmp_path / "bach-chorales.safetensors"
    report = held_out_report(checkpoint, corpus, base=base)
    assert [p.name for p in report.predictors] == ["model", "base", "unigram", "uniform"]
    ids = [p.ids for p in corpus.split("valid")]
    assert report.predictor("base").nll_per_token == pytest.approx(
        score_pieces(base.model, ids).nll_per_token
    )
    assert report.predictor("base").label == "shipped model (bach-chorales)"
    assert "than the shipped base model" in report.verdict and not report.fine_tuned
    checkpoint.train_config = {"init": "bach-chorales"}  # fine-tuned from it
    tuned = held_out_report(checkpoint, corpus, base=base)
    assert tuned.fine_tuned and "before fine-tuning" in tuned.predictor("base").label
    assert "than the model it was fine-tuned from" in tuned.verdict
    other = Checkpoint(
        bias_model(vocab), corpus.tokenizer_config, list(reversed(corpus.vocabulary))
    )
    report = held_out_report(checkpoint, corpus, base=other)
    assert not report.fine_tuned
    assert report.predictor("base") is None
    assert any(r.startswith("base model not compared") for r in report.remarks)
    assert not any(str(corpus.path) in r for r in report.remarks)


def test_without_held_out_pieces_the_report_says_so(tmp_path) -> None:
    corpus = corpus_of(tmp_path, valid=0.0)
    report = held_out_report(checkpoint_of(corpus, bias_model(len(corpus.vocabulary))), corpus)
    assert report.split is None and report.predictors == [] and report.gap is None
    assert any("no held-out pieces" in w for w in report.warnings)
    assert report.verdict.startswith("no verdict")
    assert report_lines(report)[-1].startswith("verdict: no verdict")


def test_an_empty_test_split_falls_back_to_valid(tmp_path) -> None:
    corpus = corpus_of(tmp_path)
    checkpoint = checkpoint_of(corpus, bias_model(len(corpus.vocabulary)))
    report = held_out_report(checkpoint, corpus, split="test")
    assert report.split == "valid"
    assert any("test split has no pieces" in w for w in report.warnings)
    with pytest.raises(SettingError) as caught:
        held_out_report(checkpoint, corpus, split="train")
    assert caught.value.setting == "split"


def test_evaluate_figures_are_reused_not_recomputed(tmp_path, monkeypatch) -> None:
    corpus = corpus_of(tmp_path)
    checkpoint = checkpoint_of(corpus, bias_model(len(corpus.vocabulary)))
    scored = evaluate_split(checkpoint, corpus)
    fresh = held_out_report(checkpoint, corpus)
    calls = []
    original = score_pieces

    def counting(model, pieces, *args, **kwargs):
        calls.append(len(pieces))
        return original(model, pieces, *args, **kwargs)

    monkeypatch.setattr("lstm_music.evaluation.report.score_pieces", counting)
    reused = held_out_report(checkpoint, corpus, scored=scored)
    assert len(calls) == 1  # the training sample only
    assert reused.predictor("model").nll_per_token == pytest.approx(
        fresh.predictor("model").nll_per_token
    )


def test_copies_are_found_and_flagged(tmp_path, monkeypatch) -> None:
    from lstm_music.generation.generate import GeneratedPiece

    corpus = corpus_of(tmp_path, pieces=12)
    checkpoint = checkpoint_of(corpus, bias_model(len(corpus.vocabulary)))
    honest = held_out_report(checkpoint, corpus, copy_pieces=2)
    assert honest.copies.pieces == 2 and honest.copies.flagged == 0
    assert honest.copies.reference_pieces == len(corpus.split("train"))
    assert honest.copies.seconds >= 0 and "no copies in 2 sampled pieces" in honest.verdict
    source = corpus.split("train")[0]
    copied = corpus.tokenizer().decode(source.tokens)

    def parrot(checkpoint, options):  # a model that plays a training piece back
        return [GeneratedPiece(source.tokens, copied) for _ in range(options.num)]

    monkeypatch.setattr("lstm_music.generation.generate.generate", parrot)
    report = held_out_report(checkpoint, corpus, copy_pieces=3)
    assert report.copies.flagged == 3 and report.copies.longest_run == source.info.notes
    assert report.verdict.startswith("copying: 3 of 3 sampled pieces")
    line = next(line for line in report_lines(report) if line.startswith("copy check"))
    assert f"{source.info.notes} notes" in line and "3 flagged" in line
    with pytest.raises(SettingError):
        held_out_report(checkpoint, corpus, copy_pieces=-1)


def test_the_report_survives_a_json_round_trip(tmp_path) -> None:
    corpus = corpus_of(tmp_path, pieces=12)
    checkpoint = checkpoint_of(corpus, bias_model(len(corpus.vocabulary)))
    report = held_out_report(checkpoint, corpus, copy_pieces=1)
    data = json.loads(json.dumps(report.to_dict()))
    assert HeldOutReport.from_dict(data) == report
    assert data["gap"]["gap"] == pytest.approx(report.gap.gap)
    assert data["saving_vs_unigram"] == pytest.approx(report.saving("unigram"))


def test_the_listening_test_joins_the_report(tmp_path, monkeypatch) -> None:
    """Sampled pieces against the held-out ones: in the report, its JSON, its lines, and leading
    its verdict (here a model that plays other real pieces: the test cannot tell them apart)."""
    from lstm_music.generation.generate import GeneratedPiece

    corpus = corpus_of(tmp_path, pieces=12, length=160)
    checkpoint = checkpoint_of(corpus, bias_model(len(corpus.vocabulary)))
    tokenizer, train = corpus.tokenizer(), corpus.split("train")

    def player(checkpoint, options):  # plays training pieces: real music, not the held-out
        assert options.num == 5 and options.tokens == 1024 and options.seed == 0
        return [GeneratedPiece(p.tokens, tokenizer.decode(p.tokens)) for p in train[:5]]

    monkeypatch.setattr("lstm_music.generation.generate.generate", player)
    report = held_out_report(checkpoint, corpus, listen_pieces=5)
    heard = report.listening
    assert heard.ran and heard.real == "valid split" and heard.generated_pieces == 5
    assert heard.real_pieces == len(corpus.split("valid")) and heard.real_excerpts >= 16
    assert report.verdict.startswith(f"listening test: {heard.words} (sampled pieces told ")
    assert "; bits per note: " in report.verdict
    data = json.loads(json.dumps(report.to_dict()))
    assert data["listening"]["summary"] == heard.summary() and data["listening"]["ran"]
    assert HeldOutReport.from_dict(data) == report
    assert any(line.startswith("listening test: a classifier") for line in report_lines(report))
    assert held_out_report(checkpoint, corpus).listening is None  # not asked: not run
    with pytest.raises(SettingError):
        held_out_report(checkpoint, corpus, listen_pieces=-1)


@pytest.mark.parametrize(
    ("saving", "start"),
    [(0.5, "good"), (0.2, "fair"), (0.05, "weak"), (-0.1, "poor"), (None, "no verdict")],
)
def test_the_verdict_follows_its_thresholds(saving, start) -> None:
    text = verdict.held_out_verdict(saving, gap=0.01, pieces=10)
    assert text.startswith(start)
    assert ("close to its training loss" in text) == (start in ("good", "fair"))


def test_copies_lead_the_verdict_and_an_empty_corpus_gets_none() -> None:
    copied = verdict.held_out_verdict(0.6, gap=0.0, copied=1, sampled=4, longest_run=40, pieces=9)
    assert copied.startswith("copying: 1 of 4 sampled pieces") and "40 notes" in copied
    assert "good" not in copied and "60% fewer bits per note" in copied
    empty = verdict.held_out_verdict(None, copied=0, sampled=4)
    assert empty.startswith("no verdict") and "held-out piece:" not in empty
    assert empty.endswith("no copies in 4 sampled pieces")


def test_overfitting_needs_both_the_gap_and_its_share() -> None:
    assert verdict.is_overfitting(1.0, 1.3)
    assert not verdict.is_overfitting(1.0, 1.2)  # under 0.25 nats
    assert not verdict.is_overfitting(2.0, 2.28)  # 0.28 nats, but under 15% of 2.0
    assert verdict.is_overfitting(2.0, 2.32)
    assert not verdict.is_overfitting(0.2, 0.4)  # 100%, but 0.2 nats only


def test_evaluate_prints_the_report_and_its_json(tmp_path, capsys) -> None:
    corpus = corpus_of(tmp_path)
    checkpoint_of(corpus, bias_model(len(corpus.vocabulary))).save(tmp_path / "m.safetensors")
    args = ["evaluate", str(tmp_path / "m.safetensors"), str(corpus.path)]
    assert main([*args, "--copy-check", "2"]) == 0
    out = capsys.readouterr().out
    assert "top-5 accuracy" in out and "unigram (train split)" in out and "uniform guess" in out
    assert out.rstrip().splitlines()[-1].startswith("verdict: ")
    assert "copy check: 2 sampled pieces" in out
    assert main([*args, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["perplexity"] > 0 and data["report"]["verdict"]
    assert data["report"]["copies"] is None
    assert data["report"]["predictors"][0]["bits_per_note"] == pytest.approx(data["bits_per_note"])
    assert main([*args, "--copy-check", "-1"]) == 1
    assert "(--copy-check)" in capsys.readouterr().err
    assert data["report"]["listening"]["summary"].startswith("listening test not run: too few")
    assert main([*args, "--json", "--listening-test", "0"]) == 0
    assert json.loads(capsys.readouterr().out)["report"]["listening"] is None
    assert main([*args, "--listening-test", "-1"]) == 1
    assert "(--listening-test)" in capsys.readouterr().err


def test_train_ends_with_the_report_and_keeps_it(tmp_path, capsys) -> None:
    corpus = corpus_of(tmp_path, pieces=6)
    run = tmp_path / "run"
    args = ["train", str(corpus.path), "--out", str(run), "--max-steps", "2", "--hidden", "16",
            "--embedding", "8", "--batch-size", "2", "--window", "32", "--device", "cpu",
            "-q"]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out.rstrip().splitlines()
    assert out[-1].startswith("verdict: ") and any("copy check: 4 sampled" in s for s in out)
    kept = json.loads((run / "report.json").read_text())
    assert kept["verdict"] == out[-1].removeprefix("verdict: ")
    assert main([*args, "--overwrite", "--no-report"]) == 0
    assert "verdict" not in capsys.readouterr().out and not (run / "report.json").exists()


def test_a_good_model_can_overfit_and_small_differences_keep_a_decimal() -> None:
    text = verdict.held_out_verdict(0.53, gap=0.7, overfitting=True, pieces=9)
    assert text.startswith("good: 53% fewer") and "but overfitting" in text
    assert "close to its training loss" not in text
    assert "weak: only 5% fewer" in verdict.held_out_verdict(0.05, gap=0.0, pieces=9)
    base = verdict.held_out_verdict(0.4, base_saving=-0.004, gap=0.0, pieces=9, fine_tuned=True)
    assert "0.4% more than the model it was fine-tuned from" in base
    assert "fine-tuning did not help" in base


def test_a_big_held_out_split_is_sampled_whole_pieces_within_the_cap(tmp_path, monkeypatch):
    from lstm_music.evaluation import report as report_module

    corpus = corpus_of(tmp_path, pieces=8, valid=0.5)
    pieces = corpus.split("valid")
    cap = sum(len(p.ids) + 1 for p in pieces) // 2
    sample = report_module.held_out_sample(pieces, cap)
    assert 1 <= len(sample) < len(pieces) and sum(len(p.ids) + 1 for p in sample) <= cap
    assert [p.source for p in sample] == [
        p.source for p in report_module.held_out_sample(pieces, cap)
    ]
    monkeypatch.setattr(report_module, "HELD_OUT_TOKENS_CAP", cap)
    checkpoint = checkpoint_of(corpus, bias_model(len(corpus.vocabulary)))
    report = report_module.held_out_report(checkpoint, corpus)
    assert report.pieces == len(sample) and any("fixed sample" in r for r in report.remarks)
