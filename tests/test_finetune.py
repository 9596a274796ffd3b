"""Fine-tuning (`train --init MODEL`): weights and sizes from the model, tokens checked, origin
recorded, resumable without the original file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import random_melody, write_midi

from lstm_music.cli import main
from lstm_music.corpus.prepare import PrepareConfig, prepare
from lstm_music.corpus.store import Corpus
from lstm_music.errors import SettingError
from lstm_music.fsutil import file_sha256
from lstm_music.model.checkpoint import base_of, load_checkpoint
from lstm_music.model.shipped import ShippedModel
from lstm_music.training.finetune import TokenizerMismatch, choose_base
from lstm_music.training.run import train
from lstm_music.training.settings import TrainConfig

TINY = {"window": 32, "batch_size": 4, "dropout": 0.0, "warmup_steps": 1, "device": "cpu"}


def _corpus(root: Path, name: str, tokenizer: str = "remi", first: int = 0) -> Path:
    folder = root / f"{name}-midi"
    folder.mkdir()
    for i in range(first, first + 6):
        write_midi(folder / f"{i}.mid", random_melody(i, length=40))
    out = root / name
    config = PrepareConfig(
        inputs=[str(folder)], out=str(out), tokenizer=tokenizer, valid_fraction=0.3
    )
    prepare(config, progress=False)
    return out


@pytest.fixture(scope="module")
def base_run(tmp_path_factory) -> tuple[Path, Path]:
    """A small model trained from scratch: the one the tests fine-tune."""
    root = tmp_path_factory.mktemp("base")
    corpus = _corpus(root, "corpus")
    config = TrainConfig(**TINY, embedding_dim=12, hidden_sizes=[20, 16], max_steps=4)
    train(corpus, root / "run", config, progress=False)
    return corpus, root / "run"


def test_weights_and_sizes_come_from_the_model(base_run, tmp_path: Path) -> None:
    corpus, run = base_run
    other = _corpus(tmp_path, "mine", first=20)  # other music, the same tokens
    config = TrainConfig(**TINY, init=str(run), max_steps=1, lr=1e-12)
    train(other, tmp_path / "tuned", config, progress=False)
    base = load_checkpoint(run)
    tuned = load_checkpoint(tmp_path / "tuned" / "last.safetensors")
    assert tuned.model_config.hidden_sizes == [20, 16]  # not the default [512]
    assert tuned.model_config.embedding_dim == 12
    for name, weight in base.model.state_dict().items():  # one step at lr 1e-12: unchanged
        assert torch.allclose(tuned.model.state_dict()[name], weight, atol=1e-6), name
    digest = file_sha256(run / "best.safetensors")
    read = str((run / "best.safetensors").resolve())  # the file read, findable from anywhere
    assert tuned.fine_tuned_from == {"name": read, "sha256": digest}
    saved = json.loads((tmp_path / "tuned" / "config.json").read_text())
    assert saved["train"]["init"] == read and saved["train"]["init_sha256"] == digest
    assert load_checkpoint(run).fine_tuned_from is None
    assert base_of(tuned) is not None and base_of(tuned).vocabulary == tuned.vocabulary


def test_scratch_and_fine_tuned_start_differently(base_run, tmp_path: Path) -> None:
    corpus, run = base_run
    config = TrainConfig(**TINY, embedding_dim=12, hidden_sizes=[20, 16], max_steps=1, lr=1e-12)
    train(corpus, tmp_path / "scratch", config, progress=False)
    scratch = load_checkpoint(tmp_path / "scratch" / "last.safetensors")
    base = load_checkpoint(run)
    assert not torch.allclose(scratch.model.head.weight, base.model.head.weight)


def test_other_tokens_are_refused_before_anything_is_written(base_run, tmp_path: Path) -> None:
    _, run = base_run
    other = _corpus(tmp_path, "tsd", tokenizer="tsd")
    with pytest.raises(TokenizerMismatch, match="'tsd' tokens") as caught:
        train(other, tmp_path / "tuned", TrainConfig(**TINY, init=str(run)), progress=False)
    assert caught.value.prepare_settings["tokenizer"] == "remi"
    assert not (tmp_path / "tuned").exists()


def test_cli_says_how_to_prepare_a_matching_corpus(base_run, tmp_path: Path, capsys) -> None:
    _, run = base_run
    other = _corpus(tmp_path, "tsd", tokenizer="tsd")
    code = main(["train", str(other), "--out", str(tmp_path / "t"), "--init", str(run), "-q"])
    error = capsys.readouterr().err.strip()
    assert code == 1 and len(error.splitlines()) == 1
    assert "lstm-music prepare FOLDER --out CORPUS_DIR --tokenizer remi" in error


def test_cli_init_takes_the_finetune_preset_and_refuses_sizes(base_run, tmp_path, capsys) -> None:
    corpus, run = base_run
    args = ["train", str(corpus), "--out", str(tmp_path / "t"), "--init", str(run), "-q"]
    assert main([*args, "--hidden", "64"]) == 1
    assert "--init takes the model's sizes" in capsys.readouterr().err
    assert main([*args, "--max-steps", "2", "--device", "cpu", "--batch-size", "4"]) == 0
    saved = json.loads((tmp_path / "t" / "config.json").read_text())["train"]
    assert saved["preset"] == "finetune" and saved["warmup_steps"] == 10
    assert saved["hidden_sizes"] == [20, 16]


def test_a_fine_tuned_run_resumes_without_its_original_file(base_run, tmp_path: Path) -> None:
    corpus, run = base_run
    copy = tmp_path / "copy.safetensors"
    copy.write_bytes((run / "best.safetensors").read_bytes())
    config = TrainConfig(**TINY, init=str(copy), max_steps=2)
    train(corpus, tmp_path / "tuned", config, progress=False)
    copy.unlink()
    assert main(["train", "--resume", str(tmp_path / "tuned"), "--max-steps", "4", "-q"]) == 0
    resumed = load_checkpoint(tmp_path / "tuned" / "last.safetensors")
    assert resumed.metrics["step"] == 4 and resumed.fine_tuned_from["name"] == str(copy.resolve())
    assert base_of(resumed) is None  # the recorded file is gone: no base to compare with


def test_a_changed_origin_is_not_taken_for_the_base(base_run, tmp_path: Path) -> None:
    corpus, run = base_run
    copy = tmp_path / "copy.safetensors"
    copy.write_bytes((run / "best.safetensors").read_bytes())
    train(corpus, tmp_path / "tuned", TrainConfig(**TINY, init=str(copy), max_steps=1))
    load_checkpoint(tmp_path / "tuned" / "last.safetensors").save(copy)  # other weights now
    assert base_of(load_checkpoint(tmp_path / "tuned" / "last.safetensors")) is None


def test_preset_config_applies_the_preset() -> None:
    from lstm_music import preset_config

    config = preset_config("finetune", init="base", max_minutes=3)
    assert config.warmup_steps == 10 and config.init == "base" and config.max_minutes == 3
    assert TrainConfig(preset="finetune").warmup_steps != 10  # the dataclass alone only names it


def test_asked_sizes_that_fine_tuning_cannot_keep_are_refused(base_run, tmp_path: Path) -> None:
    corpus, run = base_run
    with pytest.raises(SettingError, match="keeps its model's sizes") as caught:
        train(corpus, tmp_path / "t", TrainConfig(**TINY, init=str(run), hidden_sizes=[64]))
    assert caught.value.setting == "hidden_sizes" and not (tmp_path / "t").exists()


def test_a_folder_named_base_is_not_the_shipped_base(base_run, tmp_path, monkeypatch) -> None:
    corpus, run = base_run
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "best.safetensors").write_bytes((run / "best.safetensors").read_bytes())
    monkeypatch.chdir(tmp_path)
    config = TrainConfig(**TINY, embedding_dim=12, hidden_sizes=[20, 16], max_steps=1)
    train(corpus, tmp_path / "scratch", config, progress=False)
    scratch = load_checkpoint(tmp_path / "scratch" / "last.safetensors")
    shipped = base_of(scratch)  # the package's base model, if it ships one, never ./base
    assert shipped is None or "weights" in str(shipped.path)


def test_a_damaged_origin_gives_no_base(base_run, tmp_path: Path) -> None:
    corpus, run = base_run
    copy = tmp_path / "copy.safetensors"
    copy.write_bytes((run / "best.safetensors").read_bytes())
    train(corpus, tmp_path / "tuned", TrainConfig(**TINY, init=str(copy), max_steps=1))
    tuned = load_checkpoint(tmp_path / "tuned" / "last.safetensors")
    copy.write_bytes(b"not a checkpoint")
    assert base_of(tuned) is None


def test_init_with_resume_is_refused(base_run, tmp_path: Path, capsys) -> None:
    corpus, run = base_run
    train(corpus, tmp_path / "r", TrainConfig(**TINY, max_steps=1), progress=False)
    assert main(["train", "--resume", str(tmp_path / "r"), "--init", str(run), "-q"]) == 1
    assert "--init" in capsys.readouterr().err


def _candidates(run: Path, tmp_path: Path) -> dict[str, Path]:
    """The trained tiny base, and a copy whose head favours tokens at random (a worse base)."""
    noisy = load_checkpoint(run)
    with torch.no_grad():
        noisy.model.head.bias.copy_(torch.randn(noisy.model.head.bias.shape) * 8)
    noisy.save(tmp_path / "noisy.safetensors")
    return {"noisy": tmp_path / "noisy.safetensors", "trained": run / "best.safetensors"}


def test_auto_scores_every_base_and_chooses_the_best(base_run, tmp_path: Path) -> None:
    corpus, run = base_run
    tsd_corpus = _corpus(tmp_path, "tsd", tokenizer="tsd")
    tsd_config = TrainConfig(**TINY, embedding_dim=8, hidden_sizes=[8], max_steps=1)
    train(tsd_corpus, tmp_path / "tsd-run", tsd_config, progress=False)
    candidates = {**_candidates(run, tmp_path), "tsd": tmp_path / "tsd-run" / "best.safetensors"}
    choice = choose_base(Corpus.load(corpus), candidates)
    assert choice.chosen == "trained" and choice.split == "valid" and choice.tokens > 0
    assert [s.name for s in choice.scores] == ["trained", "noisy", "tsd"]  # best first
    assert choice.scores[0].nll_per_token < choice.scores[1].nll_per_token
    assert choice.scores[0].bits_per_note > 0 and "'tsd' tokens" in choice.scores[2].refused
    with pytest.raises(TokenizerMismatch, match="no shipped model can start"):
        choose_base(Corpus.load(tsd_corpus), {"trained": run / "best.safetensors"})


def test_cli_init_auto_prints_the_table_and_starts_from_the_best(
    base_run, tmp_path: Path, capsys, monkeypatch
) -> None:
    corpus, run = base_run
    bases = [ShippedModel(name, path, None) for name, path in _candidates(run, tmp_path).items()]
    monkeypatch.setattr("lstm_music.model.shipped.shipped_models", lambda: bases)
    out = tmp_path / "tuned"
    args = ["train", str(corpus), "--out", str(out), "--init", "auto", "-q", "--max-steps", "1"]
    assert main([*args, "--device", "cpu", "--batch-size", "4", "--no-report"]) == 0
    printed = capsys.readouterr().out
    table = printed.split("starting from")[0]
    assert "zero-shot on the valid split" in table and "noisy" in table
    assert [line.split()[0] for line in table.splitlines() if "chosen" in line] == ["trained"]
    assert "starting from trained" in printed
    saved = json.loads((out / "config.json").read_text())["train"]
    assert saved["init"] == str((run / "best.safetensors").resolve())
    assert saved["init_sha256"] == file_sha256(run / "best.safetensors")
