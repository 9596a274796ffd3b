"""`train`: corpus -> checkpoints, with truncated BPTT over whole pieces.

The run folder holds config.json (resolved settings), best.safetensors (lowest validation loss),
last.safetensors plus train_state*.safetensors (for `--resume`), metrics.csv and loss.png.
Under torchrun every process trains its own lanes; rank 0 logs and saves.
"""

from __future__ import annotations

import csv
import json
import math
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from lstm_music import __version__, distributed
from lstm_music.checkpoint import Checkpoint
from lstm_music.config import to_dict
from lstm_music.corpus import Corpus
from lstm_music.data import IGNORE, Batcher, EpochPlan, allowed_shifts, transpose_tables
from lstm_music.errors import LstmMusicError
from lstm_music.evaluate import Totals, score_pieces
from lstm_music.model import LSTMModel, ModelConfig, State, detach_state, reset_state
from lstm_music.resume import load_train_state, save_train_state, state_path
from lstm_music.trainconfig import TrainConfig, parse_transpose

METRICS = (
    "step",
    "epoch",
    "seconds",
    "lr",
    "train_loss",
    "tokens_per_second",
    "valid_loss",
    "valid_accuracy",
)


@dataclass
class TrainResult:
    run_dir: Path
    steps: int
    epochs: int  # completed epochs
    best_valid_loss: float | None
    seconds: float
    stopped_by: str


def _fresh_progress() -> dict[str, Any]:
    return {
        "step": 0,
        "epoch": 0,
        "batch": 0,
        "best": None,
        "bad_evals": 0,
        "lr_scale": 1.0,
        "seconds": 0.0,
        "stopped_by": "",
    }


class Trainer:
    """One training run (one process of it, under torchrun)."""

    def __init__(self, corpus: Corpus, run_dir: Path, config: TrainConfig, runtime, progress_bar):
        self.corpus, self.run_dir, self.config, self.runtime = corpus, run_dir, config, runtime
        self.show = progress_bar and runtime.is_main
        torch.manual_seed(config.seed * 1000 + runtime.rank)
        self.train_ids = [piece.ids for piece in corpus.split("train")]
        self.valid_ids = [piece.ids for piece in corpus.split("valid")]
        if not self.train_ids:
            raise LstmMusicError(f"{corpus.path} has no training pieces")
        self.batcher, self.shifts = self._augmentation()
        vocab = len(corpus.vocabulary)
        if config.threads:
            torch.set_num_threads(config.threads)
        self.model = LSTMModel(
            ModelConfig(
                vocab, config.embedding_dim or vocab, list(config.hidden_sizes), config.dropout
            )
        ).to(runtime.device)
        self.ddp = self.model
        if runtime.distributed:
            from torch.nn.parallel import DistributedDataParallel

            ids = [runtime.device.index] if runtime.device.type == "cuda" else None
            self.ddp = DistributedDataParallel(self.model, device_ids=ids)
        optimizer = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
        self.optimizer = optimizer(
            self.model.parameters(), lr=config.lr, weight_decay=config.weight_decay
        )
        self.progress = _fresh_progress()
        self.hidden: State | None = None
        use_amp = config.amp and runtime.device.type == "cuda"
        self.autocast = (lambda: torch.autocast("cuda", torch.bfloat16)) if use_amp else nullcontext

    def _augmentation(self) -> tuple[Batcher, list[tuple[int, int]] | None]:
        low, high = parse_transpose(self.config.transpose)
        tokenizer = self.corpus.tokenizer()
        if (low, high) == (0, 0) or not tokenizer.has_pitch:
            return Batcher(self.train_ids, self.config.window), None
        tables = transpose_tables(self.corpus.vocabulary, tokenizer, low, high)
        shifts = allowed_shifts(self.train_ids, tables, low, high)
        return Batcher(self.train_ids, self.config.window, tables), shifts

    def resume(self) -> None:
        """Continue where last.safetensors and the training state left off."""
        from lstm_music.checkpoint import load_checkpoint

        last = load_checkpoint(self.run_dir / "last.safetensors", self.runtime.device)
        self.model.load_state_dict(last.model.state_dict())
        path = state_path(self.run_dir, self.runtime.rank)
        self.hidden, self.progress = load_train_state(path, self.optimizer, self.runtime.device)

    def _lanes(self) -> range:
        size = self.config.batch_size
        return range(self.runtime.rank * size, (self.runtime.rank + 1) * size)

    def _plan(self) -> EpochPlan:
        lengths = [len(ids) for ids in self.train_ids]
        lanes = self.config.batch_size * self.runtime.world_size
        seed, epoch = self.config.seed, self.progress["epoch"]
        return EpochPlan(lengths, lanes, self.config.window, seed, epoch, self.shifts)

    def _set_lr(self) -> float:
        config, step = self.config, self.progress["step"]
        warm = min(1.0, (step + 1) / config.warmup_steps) if config.warmup_steps else 1.0
        lr = config.lr * self.progress["lr_scale"] * warm
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        return lr

    def step(self, plan: EpochPlan, index: int) -> tuple[float, int]:
        """One optimiser step on batch `index`; returns (mean loss, tokens)."""
        batch = self.batcher.batch(plan, index, self._lanes())
        device = self.runtime.device
        inputs = torch.from_numpy(batch.inputs).to(device)  # (B, T)
        targets = torch.from_numpy(batch.targets).to(device)  # (B, T)
        keep = torch.from_numpy(batch.keep).to(device)  # (B,)
        hidden = reset_state(self.hidden, keep) if self.hidden is not None else None
        with self.autocast():
            logits, hidden = self.ddp(inputs, hidden)  # (B, T, V)
        loss_sum = F.cross_entropy(
            logits.float().transpose(1, 2), targets, ignore_index=IGNORE, reduction="sum"
        )
        loss = loss_sum / max(batch.tokens, 1)
        lr = self._set_lr()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.clip)
        self.optimizer.step()
        self.hidden = detach_state(hidden)
        self.progress["step"] += 1
        self.last_lr = lr
        return float(loss.detach()), batch.tokens

    def validate(self) -> Totals | None:
        """Held-out NLL, summed over all processes' shares of the validation pieces."""
        if not self.valid_ids:
            return None
        share = self.valid_ids[self.runtime.rank :: self.runtime.world_size]
        with self.autocast():
            totals = score_pieces(self.model, share) if share else Totals()
        summed = distributed.all_reduce_sum(totals.as_list(), self.runtime)
        return Totals(summed[0], int(summed[1]), int(summed[2]), int(summed[3]))

    def checkpoint(self, metrics: dict[str, Any]) -> Checkpoint:
        return Checkpoint(
            self.model,
            self.corpus.tokenizer_config,
            self.corpus.vocabulary,
            to_dict(self.config),
            self.corpus.meta.get("config", {}),
            metrics,
        )

    def evaluate_and_save(self, started: float, scheduled: bool = True) -> bool:
        """Validate, save last (and best), log; True when early stopping says stop.

        An unscheduled validation (a budget ran out inside an epoch) may record a new best but
        never counts as a plateau, so a resumed run decays the learning rate exactly as an
        uninterrupted one would.
        """
        totals, progress = self.validate(), self.progress
        progress["seconds"] = time.perf_counter() - started
        loss = totals.nll_per_token if totals else None
        improved = loss is not None and (progress["best"] is None or loss < progress["best"] - 1e-4)
        if improved:
            progress["best"] = loss
            progress["bad_evals"] = 0 if scheduled else progress["bad_evals"]
        elif loss is not None and scheduled:
            progress["bad_evals"] += 1
            if progress["bad_evals"] % self.config.lr_patience == 0:
                progress["lr_scale"] *= self.config.lr_decay
        metrics = {
            "step": progress["step"],
            "epoch": progress["epoch"],
            "valid_loss": loss,
            "valid_accuracy": totals.accuracy if totals else None,
            "best_valid_loss": progress["best"],
            "seconds": progress["seconds"],
        }
        if self.runtime.is_main:
            checkpoint = self.checkpoint(metrics)
            checkpoint.save(self.run_dir / "last.safetensors")
            if improved or loss is None:
                checkpoint.save(self.run_dir / "best.safetensors")
            self.log({**metrics, "lr": self.progress["lr_scale"] * self.config.lr})
        save_train_state(
            state_path(self.run_dir, self.runtime.rank), self.optimizer, self.hidden, progress
        )
        self.valid_loss = loss
        patience = self.config.patience
        return bool(patience and progress["bad_evals"] >= patience)

    def log(self, row: dict[str, Any]) -> None:
        path = self.run_dir / "metrics.csv"
        new = not path.exists()
        with path.open("a", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=METRICS, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow({k: ("" if v is None else v) for k, v in row.items()})

    def out_of_budget(self, started: float) -> str:
        config, progress = self.config, self.progress
        if config.max_steps and progress["step"] >= config.max_steps:
            return "max-steps"
        minutes = (time.perf_counter() - started) / 60
        late = bool(config.max_minutes) and minutes >= config.max_minutes
        return "max-minutes" if distributed.any_process(late, self.runtime) else ""

    def run(self) -> TrainResult:
        from lstm_music.trainloop import run_epochs

        return run_epochs(self)


def train(
    corpus_path: str | Path,
    run_dir: str | Path,
    config: TrainConfig,
    resume: bool = False,
    progress: bool = True,
    overwrite: bool = False,
) -> TrainResult:
    """Train a model on a prepared corpus; `resume` continues the run in `run_dir`,
    `overwrite` replaces a finished run there."""
    runtime = distributed.start(config.device)
    try:
        corpus = Corpus.load(corpus_path)
        run_dir = Path(run_dir)
        if overwrite and not resume and runtime.is_main:
            _clear_run(run_dir)
        if runtime.distributed:
            torch.distributed.barrier()
        _prepare_run_dir(run_dir, corpus_path, config, resume, runtime)
        trainer = Trainer(corpus, run_dir, config, runtime, progress)
        if resume:
            trainer.resume()
        return trainer.run()
    finally:
        distributed.stop()


RUN_FILES = ("best.safetensors", "last.safetensors", "metrics.csv", "loss.png", "config.json")


def _clear_run(run_dir: Path) -> None:
    """Remove a previous run's own files (and nothing else) for --overwrite."""
    for name in RUN_FILES:
        (run_dir / name).unlink(missing_ok=True)
    for state in run_dir.glob("train_state*.safetensors"):
        state.unlink()


def _prepare_run_dir(run_dir: Path, corpus_path, config, resume: bool, runtime) -> None:
    if not resume and (run_dir / "last.safetensors").exists():
        raise LstmMusicError(
            f"{run_dir} already holds a run; use --resume {run_dir} to continue it, "
            "--overwrite to replace it, or choose a new --out"
        )
    if resume and not (run_dir / "last.safetensors").exists():
        raise LstmMusicError(f"nothing to resume in {run_dir} (no last.safetensors)")
    if runtime.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        resolved = {
            "train": to_dict(config),
            "corpus": str(Path(corpus_path).resolve()),
            "world_size": runtime.world_size,
            "lstm_music_version": __version__,
        }
        (run_dir / "config.json").write_text(json.dumps(resolved, indent=1) + "\n")
    if runtime.distributed:
        torch.distributed.barrier()


def read_run_config(run_dir: str | Path) -> dict[str, Any]:
    """The resolved settings a run saved (for `--resume`)."""
    path = Path(run_dir) / "config.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise LstmMusicError(f"cannot read {path}: is {run_dir} a training run?") from error


def loss_is_finite(value: float) -> bool:
    return math.isfinite(value) and not np.isnan(value)
