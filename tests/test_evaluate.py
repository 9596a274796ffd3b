"""`evaluate`: likelihoods match hand computation; per-step NLL is the sum of its tokens'."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import random_melody, write_midi

from lstm_music.cli import main
from lstm_music.corpus.prepare import PrepareConfig, prepare
from lstm_music.corpus.store import EOS_ID, Corpus
from lstm_music.errors import LstmMusicError
from lstm_music.evaluation.likelihood import evaluate_split, score_pieces, step_nll
from lstm_music.model.checkpoint import Checkpoint
from lstm_music.model.lstm import LSTMModel, ModelConfig


def corpus_of(root: Path, tokenizer: str, **settings) -> Corpus:
    for i in range(4):
        write_midi(root / "midi" / f"{i}.mid", random_melody(i, length=16))
    config = PrepareConfig(inputs=[str(root / "midi")], out=str(root / tokenizer),
                           tokenizer=tokenizer, valid_fraction=0.5, **settings)  # fmt: skip
    return prepare(config, progress=False).corpus


def bias_only_model(vocab: int, seed: int = 0) -> LSTMModel:
    """Every weight zero but the output bias: each position predicts softmax(bias)."""
    model = LSTMModel(ModelConfig(vocab, 4, [6], 0.0))
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.zero_()
        model.head.bias.copy_(torch.randn(vocab, generator=torch.Generator().manual_seed(seed)))
    return model


def test_nll_matches_hand_computation(tmp_path: Path) -> None:
    corpus = corpus_of(tmp_path, "remi")
    model = bias_only_model(len(corpus.vocabulary))
    log_probs = torch.log_softmax(model.head.bias.detach().double(), 0).numpy()
    pieces = [p.ids for p in corpus.split("valid")]
    targets = np.concatenate([np.append(ids, EOS_ID) for ids in pieces])  # every token, then <eos>
    expected = -log_probs[targets].mean()
    totals = score_pieces(model, pieces, window=7)  # windows cut pieces: the state must carry
    assert totals.tokens == len(targets)
    assert totals.nll_per_token == pytest.approx(expected, rel=1e-6)
    best = int(np.argmax(log_probs))
    assert totals.accuracy == pytest.approx(float(np.mean(targets == best)))


def test_step_nll_sums_its_tokens() -> None:
    tokens = ["Pitch_60", "Pitch_64", "Step", "Step", "Pitch_62", "Step"]
    nll = np.array([1.0, 2.0, 0.5, 0.25, 3.0, 0.125, 9.0])  # the last one is <eos>
    assert step_nll(tokens, nll).tolist() == [3.5, 0.25, 3.125]


def test_grid_report_scores_steps_and_skips_the_first(tmp_path: Path) -> None:
    corpus = corpus_of(tmp_path, "grid", grid_step=0.5)
    checkpoint = Checkpoint(bias_only_model(len(corpus.vocabulary)), corpus.tokenizer_config,
                            corpus.vocabulary)  # fmt: skip
    skipped = evaluate_split(checkpoint, corpus)
    scored = evaluate_split(checkpoint, corpus, score_first_step=True)
    pieces = corpus.split("valid")
    steps = sum(p.tokens.count("Step") for p in pieces)
    assert scored["predicted_steps"] == steps and skipped["predicted_steps"] == steps - len(pieces)
    # summed over all steps plus each piece's <eos>, the step NLLs give the total NLL
    eos_nll = -torch.log_softmax(checkpoint.model.head.bias.detach(), 0)[EOS_ID].item()
    total = scored["nll_per_step"] * steps + eos_nll * len(pieces)
    assert total == pytest.approx(scored["nll_per_token"] * scored["tokens"], rel=1e-5)
    assert skipped["first_step_scored"] is False


def test_evaluate_command(tmp_path: Path, capsys) -> None:
    corpus = corpus_of(tmp_path, "remi")
    checkpoint = Checkpoint(bias_only_model(len(corpus.vocabulary)), corpus.tokenizer_config,
                            corpus.vocabulary)  # fmt: skip
    checkpoint.save(tmp_path / "model.safetensors")
    assert main(["evaluate", str(tmp_path / "model.safetensors"), str(corpus.path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["perplexity"] == pytest.approx(math.exp(report["nll_per_token"]))
    assert report["bits_per_note"] > 0
    assert main(["evaluate", str(tmp_path / "model.safetensors"), str(corpus.path)]) == 0
    assert "top-5 accuracy" in capsys.readouterr().out


def test_mismatched_corpus_is_refused(tmp_path: Path) -> None:
    remi, grid = corpus_of(tmp_path, "remi"), corpus_of(tmp_path, "grid")
    checkpoint = Checkpoint(bias_only_model(len(remi.vocabulary)), remi.tokenizer_config,
                            remi.vocabulary)  # fmt: skip
    with pytest.raises(LstmMusicError, match="'grid' tokens"):
        evaluate_split(checkpoint, grid)


@pytest.mark.parametrize("tokenizer", ["grid", "remi"])
def test_transposition_mixture_is_the_average_over_keys(tmp_path: Path, tokenizer: str) -> None:
    """Token-by-token mixture NLL of a piece == -log(mean over shifts of p(moved piece))."""
    from lstm_music.tokens import tokenizer_from_config
    from lstm_music.tokens.transpose import transpose_tables

    corpus = corpus_of(tmp_path, tokenizer)
    torch.manual_seed(0)
    model = LSTMModel(ModelConfig(len(corpus.vocabulary), 8, [12], 0.0))
    tables = transpose_tables(
        corpus.vocabulary, tokenizer_from_config(corpus.tokenizer_config), -2, 3
    )
    pieces = [p.ids for p in corpus.pieces]
    pieces[0] = pieces[0].copy()
    if tokenizer == "grid":  # a pitch at the top: shifts up leave the vocabulary, probability 0
        pieces[0][0] = corpus.vocabulary.index("Pitch_127")
    expected = 0.0
    for ids in pieces:
        log_p = [-score_pieces(model, [ids]).nll]  # shift 0
        for table in tables.values():
            moved = table[ids]
            log_p.append(-score_pieces(model, [moved]).nll if (moved >= 0).all() else -np.inf)
        expected -= float(np.logaddexp.reduce(log_p)) - math.log(len(log_p))
    per_token: list[np.ndarray] = []
    mixed = score_pieces(model, pieces, window=5, batch_size=3, token_nll=per_token, tables=tables)
    assert mixed.nll == pytest.approx(expected, rel=1e-5)
    assert sum(float(nll.sum()) for nll in per_token) == pytest.approx(expected, rel=1e-5)
    assert mixed.nll < score_pieces(model, pieces).nll + len(pieces) * math.log(len(tables) + 1)


def test_a_mismatch_names_the_settings_that_differ(tmp_path: Path) -> None:
    from lstm_music.generation.primers import corpus_primer
    from lstm_music.model.checkpoint import check_corpus_fits

    coarse = corpus_of(tmp_path / "a", "grid", grid_step=0.5)
    fine = corpus_of(tmp_path / "b", "grid", grid_step=0.25)
    checkpoint = Checkpoint(bias_only_model(len(coarse.vocabulary)), coarse.tokenizer_config,
                            coarse.vocabulary)  # fmt: skip
    with pytest.raises(LstmMusicError, match=r"other settings than this model: params\.step"):
        evaluate_split(checkpoint, fine)
    with pytest.raises(LstmMusicError, match=r"params\.step"):
        corpus_primer(fine.path, checkpoint, 8, seed=0)  # the same check
    renumbered = Checkpoint(bias_only_model(len(coarse.vocabulary)), coarse.tokenizer_config,
                            list(reversed(coarse.vocabulary)))  # fmt: skip
    with pytest.raises(LstmMusicError, match="numbers its tokens differently"):
        check_corpus_fits(renumbered, coarse)
    check_corpus_fits(renumbered, coarse, same_ids=False)  # primers go by token name
    assert corpus_primer(coarse.path, renumbered, 8, seed=0)


def test_a_bad_transposition_mixture_names_its_setting(tmp_path: Path) -> None:
    from lstm_music.errors import SettingError

    corpus = corpus_of(tmp_path, "remi")
    checkpoint = Checkpoint(bias_only_model(len(corpus.vocabulary)), corpus.tokenizer_config,
                            corpus.vocabulary)  # fmt: skip
    with pytest.raises(SettingError, match="transposition mixture") as caught:
        evaluate_split(checkpoint, corpus, transpose_mixture="-5:6")
    assert caught.value.setting == "transpose_mixture" and "--" not in str(caught.value)
