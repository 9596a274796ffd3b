"""The model shipped in the package, `lstm-music models`, and `lstm-music demo`."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest
import symusic

from lstm_music.cli import main
from lstm_music.errors import LstmMusicError
from lstm_music.generation.generate import GenerateOptions, generate
from lstm_music.model.checkpoint import load_checkpoint
from lstm_music.model.shipped import (
    DEFAULT_MODEL,
    resolve_checkpoint,
    shipped_model,
    shipped_models,
)
from lstm_music.render import audio as render

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def wav_rms(path: Path) -> float:
    with wave.open(str(path)) as file:
        assert file.getsampwidth() == 2
        samples = np.frombuffer(file.readframes(file.getnframes()), dtype=np.int16)
    return float(np.sqrt(np.mean((samples / 32768.0) ** 2)))


def test_the_default_model_comes_first() -> None:
    assert shipped_model().name == DEFAULT_MODEL == shipped_models()[0].name


@pytest.mark.parametrize("name", ["bach-chorales", "oneills-1850", "base", "piano"])
def test_shipped_models_are_small_with_a_card(name: str) -> None:
    model = shipped_model(name)
    assert model.path.stat().st_size <= 15_000_000
    card = model.card.read_text(encoding="utf-8")
    for needed in ("lstm-music train", "licence", "NLL", "compare", "Listening"):
        assert needed in card
    described = model.describe()
    assert described["tokenizer"] == "remi" and described["parameters"] > 1_000_000


@pytest.mark.parametrize("name", [None, "oneills-1850", "base", "piano"])
def test_shipped_models_generate_valid_midi(tmp_path: Path, name: str | None) -> None:
    checkpoint = load_checkpoint(resolve_checkpoint(name))
    [piece] = generate(checkpoint, GenerateOptions(tokens=120, seed=1))
    path = tmp_path / "bach.mid"
    piece.score.dump_midi(str(path))
    assert symusic.Score(str(path)).note_num() > 10


def test_models_command_and_names(tmp_path: Path, capsys) -> None:
    assert main(["models"]) == 0
    assert DEFAULT_MODEL in capsys.readouterr().out
    assert main(["models", DEFAULT_MODEL]) == 0
    assert "licence" in capsys.readouterr().out
    assert main(["models", "no-such-model"]) == 1
    assert "shipped:" in capsys.readouterr().err
    assert resolve_checkpoint(DEFAULT_MODEL) == shipped_model().path
    with pytest.raises(LstmMusicError, match="lstm-music models"):
        resolve_checkpoint("no-such-model")
    out = tmp_path / "new.mid"  # no checkpoint: the shipped model writes
    assert main(["generate", "--out", str(out), "--tokens", "64", "--seed", "2", "--png"]) == 0
    assert symusic.Score(str(out)).note_num() > 0
    assert out.with_suffix(".png").read_bytes().startswith(PNG_MAGIC)


@pytest.mark.parametrize("name", ["bach-chorales", "oneills-1850", "base", "piano"])
def test_held_out_figures_name_their_split(name: str, capsys) -> None:
    from lstm_music.model.shipped import card_figures

    model = shipped_model(name)
    figures = card_figures(model.card)
    assert set(figures) == {"valid", "test"}
    described = model.describe()
    assert (described["valid_loss"], described["test_loss"]) == (figures["valid"], figures["test"])
    summary = described["summary"]
    assert "held-out" not in summary  # a figure without its split
    assert f"{figures['test']:.2f} nats per token on the test split" in summary
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "valid NLL/token" in out and "test NLL/token" in out
    assert f"{figures['valid']:.3f}" in out and f"{figures['test']:.3f}" in out


def test_a_corpus_given_as_a_checkpoint_is_named(tmp_path: Path, capsys) -> None:
    corpus = tmp_path / "my-corpus"
    corpus.mkdir()
    (corpus / "corpus.json").write_text("{}")
    with pytest.raises(LstmMusicError, match="is a corpus.*pass the run folder written by train"):
        resolve_checkpoint(corpus)
    assert main(["generate", str(corpus), "--out", str(tmp_path / "x.mid")]) == 1
    assert "pass the run folder written by train" in capsys.readouterr().err
    with pytest.raises(LstmMusicError, match="holds no best.safetensors"):
        resolve_checkpoint(tmp_path)  # a folder that is neither


def check_demo_folder(folder: Path, num: int) -> None:
    for number in range(1, num + 1):
        stem = folder / f"demo-{number}"
        assert symusic.Score(str(stem.with_suffix(".mid"))).note_num() > 0
        assert wav_rms(stem.with_suffix(".wav")) > 0.01  # not silent
        png = stem.with_suffix(".png").read_bytes()
        assert png.startswith(PNG_MAGIC) and len(png) > 5000


def test_demo_writes_midi_wav_and_png(tmp_path: Path, capsys) -> None:
    assert (
        main(["demo", "--out", str(tmp_path), "--seed", "1", "--num", "2", "--seconds", "6"]) == 0
    )
    output = capsys.readouterr().out
    assert "demo-2.wav" in output and "seed 1" in output
    check_demo_folder(tmp_path, 2)


def test_demo_without_a_soundfont_uses_the_fallback_synth(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.delenv(render.SOUNDFONT_ENV, raising=False)
    monkeypatch.setattr(render, "SOUNDFONT_PATHS", (str(tmp_path / "absent.sf2"),))
    assert (
        main(["demo", "--out", str(tmp_path), "--seed", "3", "--num", "1", "--seconds", "5"]) == 0
    )
    output = capsys.readouterr().out
    assert "fallback" in output and "warning: no SoundFont" in output
    check_demo_folder(tmp_path, 1)


def test_load_checkpoint_takes_what_generate_takes(tmp_path: Path) -> None:
    import lstm_music
    from lstm_music.model.checkpoint import Checkpoint

    by_name = lstm_music.load_checkpoint(DEFAULT_MODEL)
    run = tmp_path / "run"
    run.mkdir()
    by_name.save(run / "last.safetensors")
    by_folder = load_checkpoint(run)  # no best yet: the last
    assert by_folder.path == run / "last.safetensors"
    by_name.save(run / "best.safetensors")
    assert load_checkpoint(run).path == run / "best.safetensors"  # the best, when there is one
    by_file = load_checkpoint(run / "last.safetensors")
    by_default = load_checkpoint(None)
    for checkpoint in (by_name, by_folder, by_file, by_default):
        assert isinstance(checkpoint, Checkpoint) and not checkpoint.model.training
        assert checkpoint.vocabulary == by_name.vocabulary
        assert checkpoint.tokenizer_config == by_name.tokenizer_config
    assert by_name.path == shipped_model().path
    corpus = tmp_path / "my-corpus"
    corpus.mkdir()
    (corpus / "corpus.json").write_text("{}")
    with pytest.raises(LstmMusicError, match="is a corpus.*pass the run folder written by train"):
        load_checkpoint(corpus)
    with pytest.raises(LstmMusicError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "absent.safetensors")


def test_written_midi_reads_back_through_our_own_checks(tmp_path: Path) -> None:
    """MidiTok decodes REMI at 16 ticks per quarter, under what `read_score` accepts from a
    file; the pipeline writes such pieces at 480, so `compare`, primers and uploads read them."""
    from lstm_music.generation.pipeline import PieceFiles, write_pieces
    from lstm_music.tokens.midi import read_score

    checkpoint = load_checkpoint(resolve_checkpoint("bach-chorales"))
    assert generate(checkpoint, GenerateOptions(tokens=60, seed=2))[0].score.tpq < 24
    path = tmp_path / "x.mid"
    write_pieces(checkpoint, GenerateOptions(tokens=60, seed=2), lambda i: PieceFiles(path))
    score = read_score(path.read_bytes())
    assert score.tpq == 480 and score.note_num() > 5
