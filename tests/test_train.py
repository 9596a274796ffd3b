"""Training on a tiny corpus: loss falls, checkpoints load, resume is exact, runs reproduce."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import random_melody, write_midi

from lstm_music.corpus.prepare import PrepareConfig, prepare
from lstm_music.errors import LstmMusicError
from lstm_music.model.checkpoint import load_checkpoint
from lstm_music.model.header import read_safetensors
from lstm_music.model.lstm import LSTMModel, ModelConfig
from lstm_music.training.batches import IGNORE, Batcher, EpochPlan
from lstm_music.training.run import train
from lstm_music.training.settings import TrainConfig

TINY = {"embedding_dim": 16, "hidden_sizes": [32, 24], "window": 32, "batch_size": 4,
        "dropout": 0.1, "warmup_steps": 2, "device": "cpu"}  # fmt: skip


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("midi")
    for i in range(8):
        write_midi(folder / f"{i}.mid", random_melody(i, length=40))
    out = folder.parent / "corpus"
    prepare(PrepareConfig(inputs=[str(folder)], out=str(out), valid_fraction=0.25), progress=False)
    return out


def tiny(**settings) -> TrainConfig:
    return TrainConfig(**{**TINY, **settings})


def test_loss_falls_and_run_folder_is_complete(corpus: Path, tmp_path: Path) -> None:
    result = train(corpus, tmp_path / "run", tiny(epochs=6, lr=1e-2), progress=False)
    rows = list(csv.DictReader((tmp_path / "run" / "metrics.csv").open()))
    valid = [float(r["valid_loss"]) for r in rows if r["valid_loss"]]
    assert len(valid) == 6 and valid[-1] < valid[0] - 0.3
    assert result.best_valid_loss == pytest.approx(min(valid))
    for name in ("best.safetensors", "last.safetensors", "train_state.safetensors",
                 "config.json", "loss.png"):  # fmt: skip
        assert (tmp_path / "run" / name).exists(), name
    assert (tmp_path / "run" / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_saved_checkpoint_gives_identical_logits(corpus: Path, tmp_path: Path) -> None:
    train(corpus, tmp_path / "run", tiny(epochs=1), progress=False)
    checkpoint = load_checkpoint(tmp_path / "run" / "last.safetensors")
    checkpoint.save(tmp_path / "copy.safetensors")
    again = load_checkpoint(tmp_path / "copy.safetensors")
    ids = torch.randint(0, len(checkpoint.vocabulary), (2, 20))
    assert torch.equal(checkpoint.model(ids)[0], again.model(ids)[0])
    assert again.vocabulary == checkpoint.vocabulary
    assert again.tokenizer().encode(random_melody(1)) == checkpoint.tokenizer().encode(
        random_melody(1)
    )


def test_resume_matches_an_uninterrupted_run(corpus: Path, tmp_path: Path) -> None:
    """Stop inside an epoch, resume, and land on the very weights of a run that never stopped
    (the plateau schedule: the budget one follows the budget, which this resume changes)."""
    plateau = {"lr_schedule": "plateau"}
    straight = train(corpus, tmp_path / "a", tiny(max_steps=7, **plateau), progress=False)
    train(corpus, tmp_path / "b", tiny(max_steps=4, **plateau), progress=False)
    resumed = train(corpus, tmp_path / "b", tiny(max_steps=7, **plateau), resume=True,
                    progress=False)  # fmt: skip
    assert straight.steps == resumed.steps == 7
    a = load_checkpoint(tmp_path / "a" / "last.safetensors").model.state_dict()
    b = load_checkpoint(tmp_path / "b" / "last.safetensors").model.state_dict()
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_same_seed_same_run(corpus: Path, tmp_path: Path) -> None:
    train(corpus, tmp_path / "a", tiny(max_steps=3, seed=5), progress=False)
    train(corpus, tmp_path / "b", tiny(max_steps=3, seed=5), progress=False)
    train(corpus, tmp_path / "c", tiny(max_steps=3, seed=6), progress=False)
    weights = [load_checkpoint(tmp_path / r / "last.safetensors").model.head.weight
               for r in "abc"]  # fmt: skip
    assert torch.equal(weights[0], weights[1]) and not torch.equal(weights[0], weights[2])


def test_existing_run_is_not_overwritten(corpus: Path, tmp_path: Path) -> None:
    train(corpus, tmp_path / "run", tiny(max_steps=1), progress=False)
    with pytest.raises(LstmMusicError, match="--resume"):
        train(corpus, tmp_path / "run", tiny(max_steps=1), progress=False)
    (tmp_path / "run" / "notes.txt").write_text("mine")
    train(corpus, tmp_path / "run", tiny(max_steps=2), progress=False, overwrite=True)
    assert load_checkpoint(tmp_path / "run" / "last.safetensors").metrics["step"] == 2
    assert (tmp_path / "run" / "notes.txt").read_text() == "mine"  # only run files replaced


def _stream_targets(plan: EpochPlan, batcher: Batcher, lanes: int) -> list[list[int]]:
    """Each piece's targets in the order the lanes play them, cut at every reset."""
    seen: list[list[int]] = [[] for _ in batcher.pieces]
    batches = [batcher.batch(plan, index, range(lanes)) for index in range(plan.batches)]
    for lane in range(lanes):  # the stream's order: lane by lane, window by window
        for index, batch in enumerate(batches):
            begin, end = plan.span(lane, index)
            for stream_index, low, high, column in plan.pieces_in(begin, end):
                piece = int(plan.order[stream_index])
                targets = batch.targets[lane, column : column + high - low].tolist()
                assert batch.resets[lane, column] == (low == 0 or (index == 0 and column == 0))
                assert not batch.resets[lane, column + 1 : column + high - low].any()
                seen[piece] += targets
    return seen


@pytest.mark.parametrize("lengths", [(5, 70, 33, 1), (3000,), (20,), (900, 40, 2500)])
def test_every_token_is_a_target_once_and_resets_mark_each_piece(lengths) -> None:
    pieces = [np.arange(10, 10 + n) for n in lengths]
    plan = EpochPlan([len(p) for p in pieces], lanes=3, window=16, seed=0, epoch=0)
    seen = _stream_targets(plan, Batcher(pieces, 16), 3)
    for piece, targets in zip(pieces, seen):
        assert targets == [*piece.tolist(), 2]  # every token once, then <eos>


def test_control_tokens_are_read_but_never_targets() -> None:
    """Generation forces control tokens and never samples them: the loss skips them, the
    inputs keep them."""
    pieces = [np.arange(10, 60), np.arange(10, 35)]
    inputs_only = np.zeros(64, dtype=bool)
    inputs_only[[12, 20, 33]] = True
    plan = EpochPlan([len(p) for p in pieces], lanes=2, window=16, seed=0, epoch=0)
    plain, masked = Batcher(pieces, 16), Batcher(pieces, 16, inputs_only=inputs_only)
    for index in range(plan.batches):
        a, b = plain.batch(plan, index, range(2)), masked.batch(plan, index, range(2))
        assert (a.inputs == b.inputs).all()
        skipped = (a.targets != IGNORE) & inputs_only[np.maximum(a.targets, 0)]
        assert (b.targets[skipped] == IGNORE).all() and (
            b.targets[~skipped] == a.targets[~skipped]
        ).all()
        assert b.tokens == a.tokens - int(skipped.sum())
    assert (
        sum(
            plain.batch(plan, i, range(2)).tokens - masked.batch(plan, i, range(2)).tokens
            for i in range(plan.batches)
        )
        == 6
    )  # 12, 20 and 33 in each piece


@pytest.mark.parametrize(
    "lengths",
    [
        [2000],  # one piece
        [30_000, 12_000, 900],  # a few long pieces
        [int(n) for n in np.random.default_rng(1).integers(40, 400, size=600)],  # many short
        [int(n) for n in np.random.default_rng(2).lognormal(7, 1.2, size=27)],  # uneven folder
    ],
)
def test_batches_are_full(lengths: list[int]) -> None:
    plan = EpochPlan(lengths, lanes=32, window=128, seed=0, epoch=3)
    assert plan.utilisation >= 0.95
    assert plan.window <= 128
    real = sum(
        Batcher([np.ones(n, dtype=np.int64) for n in lengths], 128)
        .batch(plan, index, range(32))
        .tokens
        for index in range(plan.batches)
    )
    assert real == sum(lengths) + len(lengths)  # the utilisation is what the batches hold
    assert real / (32 * plan.window * plan.batches) == pytest.approx(plan.utilisation)


def test_the_old_plan_would_have_been_mostly_padding() -> None:
    """The case issue 12 measured (27 uneven pieces): whole pieces dealt to 32 lanes waste most
    of each epoch; the stream plan does not."""
    lengths = [int(n) for n in np.random.default_rng(2).lognormal(7, 1.2, size=27)]
    windows_per_piece = [-(-(n + 1) // 128) for n in lengths]
    old_capacity = max(windows_per_piece) * 32 * 128  # at best one piece per lane
    assert (sum(lengths) + 27) / old_capacity < 0.5
    assert EpochPlan(lengths, 32, 128, 0, 0).utilisation > 0.95


def test_a_window_holding_two_pieces_equals_two_separate_runs() -> None:
    """A reset inside a window gives the second piece exactly a fresh start."""
    torch.manual_seed(0)
    model = LSTMModel(ModelConfig(20, 8, [12, 6], dropout=0.0)).eval()
    first, second = torch.randint(3, 20, (1, 5)), torch.randint(3, 20, (1, 7))
    resets = torch.zeros(1, 12, dtype=torch.bool)
    resets[0, 0] = resets[0, 5] = True
    with torch.no_grad():
        joined, _ = model(torch.cat([first, second], 1), model.init_state(1), resets)
        alone_first, carried = model(first)
        alone_second, _ = model(second)
        naive, _ = model(second, carried)
    assert torch.allclose(joined[:, :5], alone_first, atol=1e-6)
    assert torch.allclose(joined[:, 5:], alone_second, atol=1e-6)
    assert not torch.allclose(joined[:, 5:], naive, atol=1e-4)  # the reset did something


def test_torchrun_two_processes(corpus: Path, tmp_path: Path) -> None:
    """DistributedDataParallel on 2 CPU processes (gloo), rank 0 saving."""
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
               "--master-port", "29517", "-m", "lstm_music", "train", str(corpus), "--out",
               str(tmp_path / "ddp"), "--max-steps", "3", "--embedding", "16", "--hidden", "32",
               "--window", "32", "--batch-size", "2", "--device", "cpu", "-q"]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "trained 3 steps" in result.stdout
    tensors, meta = read_safetensors(tmp_path / "ddp" / "train_state.safetensors", "state")
    assert meta["world_size"] == 2 and "rank1.rng.cpu" in tensors  # one file, both processes
    checkpoint = load_checkpoint(tmp_path / "ddp" / "last.safetensors")
    assert checkpoint.metrics["step"] == 3
    resume = [*command[:7], "-m", "lstm_music", "train", "--resume", str(tmp_path / "ddp"),
              "--max-steps", "5", "-q"]  # fmt: skip
    result = subprocess.run(resume, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert load_checkpoint(tmp_path / "ddp" / "last.safetensors").metrics["step"] == 5


def test_a_run_saved_mid_epoch_by_the_old_plan_restarts_that_epoch(corpus, tmp_path) -> None:
    from lstm_music.model.checkpoint import write_safetensors

    run = tmp_path / "run"
    train(corpus, run, tiny(max_steps=1, batch_size=1, window=8), progress=False)
    path = run / "train_state.safetensors"
    tensors, meta = read_safetensors(path, "state")
    assert meta["progress"]["batch"] == 1 and meta["progress"]["plan"] == 2
    del meta["progress"]["plan"]  # as written before issue 12
    write_safetensors(path, tensors, meta)
    heard: list[str] = []
    result = train(corpus, run, tiny(max_steps=2, batch_size=1, window=8), resume=True,
                   progress=False, notify=heard.append)  # fmt: skip
    assert any("that epoch starts over" in note for note in heard)
    assert result.steps == 2
    _, meta = read_safetensors(path, "state")
    assert meta["progress"]["batch"] == 1 and meta["progress"]["plan"] == 2


def test_budget_schedule_anneals_the_rate_over_the_budget(corpus: Path, tmp_path: Path) -> None:
    """`lr_schedule="budget"`: the rate falls linearly with the budget spent (here steps); the
    plateau schedule keeps it (its decays off in both)."""
    rates = {}
    for schedule in ("plateau", "budget"):
        config = tiny(max_steps=20, epochs=1000, lr=1e-2, lr_decay=1.0, lr_schedule=schedule)
        train(corpus, tmp_path / schedule, config, progress=False)
        rows = list(csv.DictReader((tmp_path / schedule / "metrics.csv").open()))
        rates[schedule] = [float(r["lr"]) for r in rows if r["train_loss"]]
    assert rates["plateau"] == pytest.approx([1e-2, 1e-2])  # steps 10 and 20
    assert rates["budget"] == pytest.approx([1e-2 * (1 - 9 / 20), 1e-2 * (1 - 19 / 20)])
    with pytest.raises(LstmMusicError, match="schedule must be plateau or budget"):
        tiny(lr_schedule="cosine")


def test_budget_share_is_the_first_budget_to_end() -> None:
    """Epochs, steps and minutes (net of the closing work): the largest share counts."""
    from types import SimpleNamespace

    from lstm_music.training.budget import RunClock

    def share(elapsed: float, closing: float, **config) -> float:
        settings = {"epochs": 10, "max_steps": 0, "max_minutes": 0.0, **config}
        clock = SimpleNamespace(config=SimpleNamespace(**settings), progress={"step": 30},
                                epochs_done=lambda: 2.0)  # fmt: skip
        return RunClock.budget_share(clock, elapsed, closing)

    assert share(0, 0) == pytest.approx(0.2)  # 2 of 10 epochs
    assert share(0, 0, max_steps=60) == pytest.approx(0.5)  # 30 of 60 steps
    assert share(45, 30, max_minutes=2) == pytest.approx(0.5)  # 45 of 120 - 30 seconds
    assert share(500, 30, max_minutes=2) == 1.0
