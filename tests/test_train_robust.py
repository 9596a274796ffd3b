"""Training that survives kills, full disks and budgets, and says what it did (issue 10)."""

from __future__ import annotations

import csv
import errno
import json
import types
from pathlib import Path

import pytest
import torch
from conftest import random_melody, write_midi

import lstm_music.training.loop as trainloop_module
import lstm_music.training.trainer as train_module
from lstm_music.cli import main
from lstm_music.corpus.prepare import PrepareConfig, prepare
from lstm_music.errors import LstmMusicError
from lstm_music.model.checkpoint import load_checkpoint, write_safetensors
from lstm_music.training.run import train
from lstm_music.training.settings import TrainConfig

TINY = {"embedding_dim": 16, "hidden_sizes": [24], "window": 32, "batch_size": 4,
        "dropout": 0.1, "warmup_steps": 2, "device": "cpu", "threads": 1}  # fmt: skip


def _corpus(folder: Path, files: int, valid_fraction: float) -> Path:
    for i in range(files):
        write_midi(folder / "midi" / f"{i}.mid", random_melody(i, length=40))
    out = folder / "corpus"
    config = PrepareConfig(inputs=[str(folder / "midi")], out=str(out), valid_fraction=0.25)
    config.valid_fraction = valid_fraction
    prepare(config, progress=False)
    return out


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return _corpus(tmp_path_factory.mktemp("robust"), 8, 0.25)


def tiny(**settings) -> TrainConfig:
    return TrainConfig(**{**TINY, **settings})


class _Killed(BaseException):
    """Stands for kill -9: nothing after the raise runs (not even `except Exception`)."""


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(run / "last.safetensors").model.state_dict()


def test_kill_between_checkpoint_and_state_resumes_consistently(corpus, tmp_path, monkeypatch):
    """Point 6 and 10: last.safetensors written, the state not: resume never mixes the two,
    lands on the weights of a run that never stopped, and metrics.csv has no duplicate step."""
    straight = train(corpus, tmp_path / "a", tiny(max_steps=7), progress=False)
    train(corpus, tmp_path / "b", tiny(max_steps=4), progress=False)

    def killed(*args, **kwargs):
        raise _Killed

    with monkeypatch.context() as patch:
        patch.setattr(train_module, "save_train_state", killed)
        with pytest.raises(_Killed):
            train(corpus, tmp_path / "b", tiny(max_steps=7), resume=True, progress=False)
    assert load_checkpoint(tmp_path / "b" / "last.safetensors").metrics["step"] == 7
    resumed = train(corpus, tmp_path / "b", tiny(max_steps=7), resume=True, progress=False)
    assert straight.steps == resumed.steps == 7
    a, b = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    steps = [row["step"] for row in csv.DictReader((tmp_path / "b" / "metrics.csv").open())]
    assert len(steps) == len(set(steps)), steps


def test_resume_with_unreadable_state_starts_over(corpus, tmp_path):
    """Point 8: a damaged state (a full disk, a crash) starts the run over, with a message."""
    train(corpus, tmp_path / "run", tiny(max_steps=2), progress=False)
    state = tmp_path / "run" / "train_state.safetensors"
    state.write_bytes(state.read_bytes()[:100])
    heard: list[str] = []
    result = train(
        corpus,
        tmp_path / "run",
        tiny(max_steps=3),
        resume=True,
        progress=False,
        notify=heard.append,
    )
    assert result.steps == 3 and any("starting the run over" in note for note in result.notes)
    assert heard == result.notes
    assert load_checkpoint(tmp_path / "run" / "last.safetensors").metrics["step"] == 3
    kept = load_checkpoint(tmp_path / "run" / "best.before-restart.safetensors")
    assert kept.metrics["step"] == 2  # the old run's checkpoints are set aside, not deleted


def test_resume_before_first_checkpoint_starts_over(corpus, tmp_path, capsys):
    """Point 8: killed before its first training state was saved (last.safetensors may be
    there, or only config.json): --resume starts the run over."""
    run = tmp_path / "run"
    train(corpus, run, tiny(max_steps=1), progress=False)
    (run / "train_state.safetensors").unlink()
    code = main(["train", "--resume", str(run), "--max-steps", "2", "-q"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "starting it over" in captured.err and "trained 2 steps" in captured.out
    with pytest.raises(LstmMusicError, match="not a training run"):
        train(corpus, tmp_path / "elsewhere", tiny(), resume=True, progress=False)


def test_leftover_temporary_files_are_removed(corpus, tmp_path):
    """Point 7: what a kill left (our `.name.XXXXXXXX`, safetensors' `.tmpXXXXXX`) goes on
    resume; other files, even similar names, stay."""
    run = tmp_path / "run"
    train(corpus, run, tiny(max_steps=1), progress=False)
    header = b'{"__metadata__":{}}'
    leftovers = {
        ".last.safetensors.ab12cd_3": b"",
        ".train_state.safetensors.zz99yy88": b"\x00" * 10,
        ".metrics.csv.k2j3h4g5": b"step\n",
        ".tmpA1b2C3": len(header).to_bytes(8, "little") + header,
    }
    kept = {"notes.txt": b"mine", ".tmpQ1w2E3": b"not a safetensors file", ".last.bak": b"x"}
    for name, data in {**leftovers, **kept}.items():
        (run / name).write_bytes(data)
    result = train(corpus, run, tiny(max_steps=2), resume=True, progress=False)
    assert not [name for name in leftovers if (run / name).exists()]
    assert all((run / name).read_bytes() == data for name, data in kept.items())
    assert any("removed 4 temporary files" in note for note in result.notes)


def test_write_safetensors_leaves_no_foreign_temporary(tmp_path, monkeypatch):
    """Point 7: safetensors' save_file (whose `.tmpXXXXXX` a kill leaves) is not used."""
    import safetensors.torch

    def refused(*args, **kwargs):
        raise AssertionError("save_file writes its own temporary file")

    monkeypatch.setattr(safetensors.torch, "save_file", refused)
    write_safetensors(tmp_path / "x.safetensors", {"w": torch.ones(3)}, {"format": "test"})
    assert [p.name for p in tmp_path.iterdir()] == ["x.safetensors"]


def test_disk_full_is_one_line(corpus, tmp_path, monkeypatch, capsys):
    """Point 9: ENOSPC while saving is an LstmMusicError, one line from the CLI."""
    import lstm_music.model.checkpoint as checkpoint_module

    def full(path, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(checkpoint_module, "write_safetensors", full)
    with pytest.raises(LstmMusicError, match="disk is full"):
        train(corpus, tmp_path / "run", tiny(max_steps=1), progress=False)
    code = main(["train", str(corpus), "--out", str(tmp_path / "cli"), "--max-steps", "1",
                 "--embedding", "8", "--hidden", "8", "--device", "cpu", "-q"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1 and "disk is full" in err and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_time_budget_decision() -> None:
    """Point 10: stop when one more step plus the closing validation would pass the budget."""
    time_is_up = trainloop_module.time_is_up
    assert not time_is_up(elapsed=30, budget=60, step_seconds=1, finish_seconds=20)
    assert time_is_up(elapsed=40, budget=60, step_seconds=1, finish_seconds=20)
    assert not time_is_up(elapsed=10_000, budget=0, step_seconds=1, finish_seconds=20)


class _FakeTime:
    """A clock that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def perf_counter(self) -> float:
        return self.now


def test_budget_covers_the_closing_validation(corpus, tmp_path, monkeypatch):
    """Point 10: with 1 s steps and 20 s validations, --max-minutes 1 ends within the minute."""
    clock = _FakeTime()
    fake = types.SimpleNamespace(perf_counter=clock.perf_counter, time=clock.perf_counter)
    monkeypatch.setattr(train_module, "time", fake)
    monkeypatch.setattr(trainloop_module, "time", fake)
    step, score = train_module.Trainer.step, train_module.score_pieces

    def slow_step(self, *args):
        clock.now += 1.0
        return step(self, *args)

    def slow_score(*args, **kwargs):
        clock.now += 20.0
        return score(*args, **kwargs)

    monkeypatch.setattr(train_module.Trainer, "step", slow_step)
    monkeypatch.setattr(train_module, "score_pieces", slow_score)
    result = train(corpus, tmp_path / "run", tiny(max_minutes=1.0), progress=False)
    assert result.stopped_by == "max-minutes"
    assert result.seconds <= 60.0 + 1e-6, result.seconds


def test_validation_cut_at_the_deadline(corpus, tmp_path, monkeypatch):
    """Point 10: a validation that would overrun is cut short, said, and not recorded as best."""
    clock = _FakeTime()
    fake = types.SimpleNamespace(perf_counter=clock.perf_counter, time=clock.perf_counter)
    monkeypatch.setattr(train_module, "time", fake)
    monkeypatch.setattr(trainloop_module, "time", fake)
    monkeypatch.setattr(train_module, "VALID_GROUP", 1)  # one piece at a time: 2 groups
    step, score = train_module.Trainer.step, train_module.score_pieces

    def slow_step(self, *args):
        clock.now += 1.0
        return step(self, *args)

    def slow_score(*args, **kwargs):
        clock.now += 15.0  # far more than the estimate made from the training speed
        return score(*args, **kwargs)

    monkeypatch.setattr(train_module.Trainer, "step", slow_step)
    monkeypatch.setattr(train_module, "score_pieces", slow_score)
    result = train(corpus, tmp_path / "run", tiny(max_minutes=0.5), progress=False)
    assert any("scored 1 of 2 pieces" in note for note in result.notes), result.notes
    assert result.best_valid_loss is None and result.seconds <= 30 + 15
    rows = list(csv.DictReader((tmp_path / "run" / "metrics.csv").open()))
    assert not any(row["valid_loss"] for row in rows)


def test_epochs_counted_one_way(corpus, tmp_path, capsys):
    """Point 14: 3 steps are a fraction of an epoch, not "0 epochs"; the ETA covers the run."""
    code = main(["train", str(corpus), "--out", str(tmp_path / "run"), "--max-steps", "3",
                 "--embedding", "8", "--hidden", "8", "--batch-size", "1", "--window", "16",
                 "--device", "cpu", "-q"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and "trained 3 steps (0." in out and "(0 epochs)" not in out
    format_epochs, seconds_left = trainloop_module.format_epochs, trainloop_module.seconds_left
    assert format_epochs(4.42) == "4.4" and format_epochs(0.032) == "0.03"
    budget = types.SimpleNamespace(epochs=30, max_steps=0, max_minutes=2.0, eval_every=0)
    assert seconds_left(budget, 30.0, 100, 4.4, 93, 0.5, 3.0) == 90.0  # the time budget ends first
    budget.max_minutes = 0.0
    left = seconds_left(budget, 30.0, 100, 4.4, 93, 0.5, 3.0)
    assert left == pytest.approx(25.6 * 93 * 0.5 + 26 * 3.0)  # every epoch left, validations too


def test_no_validation_pieces_says_best_is_last(tmp_path, capsys):
    """Point 15: without validation data, best.safetensors is the last: result, metadata, CLI."""
    corpus = _corpus(tmp_path, 3, 0.0)
    result = train(corpus, tmp_path / "run", tiny(max_steps=2), progress=False)
    assert result.best_is_last and any("no validation pieces" in note for note in result.notes)
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert "no validation pieces" in saved["best_checkpoint"]
    best = load_checkpoint(tmp_path / "run" / "best.safetensors")
    assert best.metrics["best_chosen_by"].startswith("none")
    code = main(["train", "--resume", str(tmp_path / "run"), "--max-steps", "3", "-q"])
    captured = capsys.readouterr()
    assert code == 0 and "no validation pieces" in captured.err
    assert "same as last" in captured.out


def _files(run: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(run.iterdir())}


def _rewrite_state(run: Path, change) -> None:
    """Rewrite train_state.safetensors after `change(tensors, meta)` edits it in place."""
    from lstm_music.model.header import read_safetensors

    path = run / "train_state.safetensors"
    tensors, meta = read_safetensors(path, "training state")
    change(tensors, meta)
    write_safetensors(path, tensors, meta)


def _as_version_1(run: Path, world_size: int = 1) -> None:
    """Turn a run's state into the previous release's layout: no version, no weights, one file
    per process (train_state.rankN.safetensors), the weights only in last.safetensors."""
    from lstm_music.model.header import read_safetensors

    tensors, meta = read_safetensors(run / "train_state.safetensors", "training state")
    old = {k: v for k, v in tensors.items() if k.startswith("optimizer.")}
    old.update({k[len("rank0.") :]: v for k, v in tensors.items() if k.startswith("rank0.")})
    old_meta = {k: meta[k] for k in ("format", "progress", "param_groups", "plain_state")}
    for rank in range(world_size):
        name = "train_state.safetensors" if rank == 0 else f"train_state.rank{rank}.safetensors"
        write_safetensors(run / name, old, old_meta)


def test_world_size_mismatch_is_refused_and_touches_nothing(corpus, tmp_path):
    """A state from a 2-process run, resumed by one process: one line, every file kept."""
    run = tmp_path / "run"
    train(corpus, run, tiny(max_steps=2), progress=False)
    _rewrite_state(run, lambda tensors, meta: meta.update(world_size=2))
    before = _files(run)
    with pytest.raises(LstmMusicError, match="nproc-per-node 2") as caught:
        train(corpus, run, tiny(max_steps=3), resume=True, progress=False)
    assert len(str(caught.value).splitlines()) == 1
    assert _files(run) == before


def test_version_1_state_is_resumed(corpus, tmp_path):
    """The previous release's state (weights in last.safetensors) resumes exactly; its
    per-process files go once the new state is written."""
    straight = train(corpus, tmp_path / "a", tiny(max_steps=7), progress=False)
    run = tmp_path / "b"
    train(corpus, run, tiny(max_steps=4), progress=False)
    _as_version_1(run)
    resumed = train(corpus, run, tiny(max_steps=7), resume=True, progress=False)
    assert straight.steps == resumed.steps == 7
    assert not any("starting" in note for note in resumed.notes), resumed.notes
    a, b = _weights(tmp_path / "a"), _weights(run)
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    assert not (run / "best.before-restart.safetensors").exists()


def test_version_1_state_of_another_world_size_is_refused(corpus, tmp_path):
    run = tmp_path / "run"
    train(corpus, run, tiny(max_steps=2), progress=False)
    _as_version_1(run, world_size=2)
    before = _files(run)
    with pytest.raises(LstmMusicError, match="nproc-per-node 2"):
        train(corpus, run, tiny(max_steps=3), resume=True, progress=False)
    assert _files(run) == before


def test_version_1_state_one_step_from_its_weights_starts_over(corpus, tmp_path):
    """A v1 kill between last.safetensors and the state: the pair disagrees, so the run starts
    over with a note, its checkpoints set aside."""
    run = tmp_path / "run"
    train(corpus, run, tiny(max_steps=4), progress=False)
    _as_version_1(run)
    _rewrite_state(run, lambda tensors, meta: meta["progress"].update(step=3))
    result = train(corpus, run, tiny(max_steps=2), resume=True, progress=False)
    assert result.steps == 2
    assert any("step 4" in n and "step 3" in n and "over" in n for n in result.notes), result.notes
    assert load_checkpoint(run / "last.before-restart.safetensors").metrics["step"] == 4


def test_missing_state_sets_checkpoints_aside_and_numbers_them(corpus, tmp_path):
    """A run with no state left starts over without deleting its trained model, and a second
    start-over never overwrites the first one's kept checkpoints."""
    run = tmp_path / "run"
    train(corpus, run, tiny(max_steps=5), progress=False)
    (run / "train_state.safetensors").unlink()
    result = train(corpus, run, tiny(max_steps=1), resume=True, progress=False)
    assert any("best.before-restart.safetensors" in note for note in result.notes), result.notes
    (run / "train_state.safetensors").unlink()
    train(corpus, run, tiny(max_steps=2), resume=True, progress=False)
    steps = {
        name: load_checkpoint(run / f"{name}.safetensors").metrics["step"]
        for name in ("best.before-restart", "best.before-restart-2", "last.before-restart-2")
    }
    assert steps == {"best.before-restart": 5, "best.before-restart-2": 1,
                     "last.before-restart-2": 1}  # fmt: skip
    assert load_checkpoint(run / "last.safetensors").metrics["step"] == 2
