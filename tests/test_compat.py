"""Files written before the code moved into stage packages still load, generate and score.

tests/fixtures/compat/ holds a checkpoint and a corpus written by lstm-music at commit 320048f
(its README says how); they are never regenerated, so these tests see what old files look like.
"""

from __future__ import annotations

import math
from pathlib import Path

import lstm_music
from lstm_music.corpus.store import Corpus
from lstm_music.evaluation.likelihood import evaluate_split
from lstm_music.model.checkpoint import Checkpoint, check_corpus_fits, load_checkpoint

FIXTURES = Path(__file__).parent / "fixtures" / "compat"
CHECKPOINT = FIXTURES / "checkpoint.safetensors"
CORPUS = FIXTURES / "corpus"


def test_an_old_checkpoint_loads_and_generates() -> None:
    checkpoint = lstm_music.load_checkpoint(CHECKPOINT)
    assert isinstance(checkpoint, Checkpoint) and checkpoint.path == CHECKPOINT
    assert checkpoint.model_config.vocab_size == len(checkpoint.vocabulary)
    [piece] = lstm_music.generate(checkpoint, tokens=20, seed=1)
    assert 0 < len(piece.tokens) <= 20  # <eos> may end it sooner
    assert piece.score.note_num() >= 0  # decoded into a score
    assert set(piece.tokens) <= set(checkpoint.vocabulary)


def test_an_old_corpus_loads_and_fits_its_checkpoint() -> None:
    corpus = Corpus.load(CORPUS)
    checkpoint = load_checkpoint(CHECKPOINT)
    assert corpus.pieces and corpus.split("valid")
    check_corpus_fits(checkpoint, corpus)
    assert corpus.tokenizer().to_config() == checkpoint.tokenizer().to_config()
    assert corpus.tokenizer().encode(corpus.tokenizer().decode(corpus.pieces[0].tokens))


def test_an_old_checkpoint_scores_an_old_corpus() -> None:
    report = evaluate_split(load_checkpoint(CHECKPOINT), Corpus.load(CORPUS))
    assert report["pieces"] == len(Corpus.load(CORPUS).split("valid"))
    assert math.isfinite(report["nll_per_token"]) and report["nll_per_token"] > 0
    assert report["tokens"] > 0
