"""The `Trainer`: one process's model, optimiser and batches, with truncated BPTT over whole pieces.

The run folder holds config.json (resolved settings), best.safetensors (lowest validation loss;
the last checkpoint when the corpus has no validation pieces), last.safetensors,
train_state.safetensors (everything a resumed run needs, in one file), metrics.csv and loss.png.
Under torchrun every process trains its own lanes; rank 0 logs and saves. The epoch loop is in
`loop`, the run folder's plain files and life cycle in `rundir`, a run from start to end in `run`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from lstm_music.corpus.store import Corpus
from lstm_music.errors import LstmMusicError
from lstm_music.evaluation.likelihood import Totals, score_pieces, without_controls
from lstm_music.model.checkpoint import Checkpoint
from lstm_music.model.lstm import HiddenState, LSTMModel, detach_state
from lstm_music.model.runs import BEST_CHECKPOINT, LAST_CHECKPOINT
from lstm_music.settings import to_dict
from lstm_music.training import distributed
from lstm_music.training.batches import IGNORE, EpochPlan, make_batcher
from lstm_music.training.budget import RunClock
from lstm_music.training.interrupt import StopSignals
from lstm_music.training.loop import TrainResult, fresh_progress, run_epochs
from lstm_music.training.regularise import WeightAverage, averaged, model_config
from lstm_music.training.resume import (
    load_train_state,
    rank_state,
    rescore_older_best,
    save_train_state,
    state_path,
)
from lstm_music.training.rundir import (
    append_metrics,
)
from lstm_music.training.settings import LR_FLOOR, TrainConfig

PLAN_VERSION = 2  # 2: one stream cut into lanes (issue 12); 1: whole pieces dealt to lanes
VALID_GROUP = 16  # validation pieces scored at a time (evaluate's batch), between clock checks


class Trainer(RunClock):
    """One training run (one process of it, under torchrun); its budget decisions are
    `RunClock`'s."""

    def clock(self) -> float:
        """Seconds on the run's clock (tests replace this module's `time` with a fake one)."""
        return time.perf_counter()

    def __init__(self, corpus: Corpus, run_dir: Path, config: TrainConfig, runtime, progress_bar):
        self.corpus, self.run_dir, self.config, self.runtime = corpus, run_dir, config, runtime
        self.show = progress_bar and runtime.is_main
        self.notes: list[str] = []
        self.batches = 0  # batches in the current epoch's plan
        self.utilisation = 0.0  # share of the current epoch's batch capacity holding targets
        self.step_seconds = 0.0  # smoothed duration of one step
        self.last_step_seconds = 0.0  # the latest step's: a machine getting busier shows here first
        self.finish_seconds: float | None = None  # the last validation-and-save's duration
        self.valid_loss: float | None = None
        self.saved_step = -1  # the step of the last saved training state
        self.saved_at = 0.0  # and when it was saved (the clock's time)
        self.scoring_seconds: tuple[float, int] = (0.0, 0)  # validation time, tokens scored
        self.origin: float | None = None  # when the command began: the time budget's start
        self.report = False  # the closing report follows, in the time budget
        self.signals = StopSignals()  # SIGINT and SIGTERM, noted during the epoch loop
        self.last_lr = config.lr  # the learning rate of the last step, for metrics.csv
        self.budget_used = 0.0  # share of the run's budget spent, set before each step
        self.smoothed_loss: float | None = None  # the training loss the bar and metrics show
        self.notify: Callable[[str], None] | None = None  # hears each note as it arises
        self.on_epoch: Callable[[str], None] | None = None  # hears each epoch's summary line
        torch.manual_seed(config.seed * 1000 + runtime.rank)
        self.train_ids = [piece.ids for piece in corpus.split("train")]
        # validation scores the music as generation without controls meets it (control tokens
        # are inputs only: never predicted in training, so not scored either)
        self.valid_ids = without_controls(
            corpus.vocabulary, [piece.ids for piece in corpus.split("valid")]
        )
        self.valid_tokens = sum(len(ids) + 1 for ids in self.valid_ids)
        if not self.train_ids:
            raise LstmMusicError(f"{corpus.path} has no training pieces")
        self.batcher, self.shifts, notes = make_batcher(
            self.train_ids, corpus.vocabulary, corpus.tokenizer(), config
        )
        for text in notes:
            self.note(text)
        vocab = len(corpus.vocabulary)
        if config.threads:
            torch.set_num_threads(config.threads)
        self.model = LSTMModel(model_config(config, vocab)).to(runtime.device)
        # the averaged weights, validated and saved in checkpoints; None: the weights as they are
        self.average = WeightAverage(self.model, config.average) if config.average else None
        self.ddp = self.model
        if runtime.distributed:
            from torch.nn.parallel import DistributedDataParallel

            ids = [runtime.device.index] if runtime.device.type == "cuda" else None
            self.ddp = DistributedDataParallel(self.model, device_ids=ids)
        optimizer = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
        self.optimizer = optimizer(
            self.model.parameters(), lr=config.lr, weight_decay=config.weight_decay
        )
        self.progress = fresh_progress(PLAN_VERSION)
        self.hidden: HiddenState | None = None
        use_amp = config.amp and runtime.device.type == "cuda"
        self.autocast = (lambda: torch.autocast("cuda", torch.bfloat16)) if use_amp else nullcontext

    def resume(self) -> None:
        """Continue where the training state left off (a `CheckpointError` if it cannot)."""
        runtime = self.runtime
        self.hidden, self.progress = load_train_state(
            state_path(self.run_dir),
            self.model,
            self.optimizer,
            runtime.rank,
            runtime.world_size,
            runtime.device,
            self.average.tensors if self.average else None,
        )
        self.saved_step = self.progress["step"]
        if self.progress.get("plan") != PLAN_VERSION and self.progress["batch"]:
            self.note(  # its position and carried state belong to the old plan of batches
                f"this run was saved inside epoch {self.progress['epoch'] + 1} by an older "
                "version, which planned the epoch's batches differently: that epoch starts over"
            )
            self.progress["batch"], self.hidden = 0, None
        self.progress["plan"] = PLAN_VERSION
        note = rescore_older_best(self.progress, self.corpus.vocabulary)
        if note:
            self.note(note)

    def note(self, text: str) -> None:
        """Something the user should hear: kept for the result, and told `notify` now."""
        self.notes.append(text)
        if self.notify:
            self.notify(text)

    def epochs_done(self) -> float:
        """Completed epochs plus the share of the current one: the one epoch count we show."""
        share = self.progress["batch"] / self.batches if self.batches else 0.0
        return self.progress["epoch"] + share

    def _lanes(self) -> range:
        size = self.config.batch_size
        return range(self.runtime.rank * size, (self.runtime.rank + 1) * size)

    def plan_epoch(self) -> EpochPlan:
        """The current epoch's plan (the same on every process and after a resume)."""
        lengths = [len(ids) for ids in self.train_ids]
        lanes = self.config.batch_size * self.runtime.world_size
        seed, epoch = self.config.seed, self.progress["epoch"]
        velocity = self.config.velocity_shift
        plan = EpochPlan(lengths, lanes, self.config.window, seed, epoch, self.shifts, velocity)
        self.batches, self.utilisation = plan.batches, plan.utilisation
        return plan

    def end_epoch(self) -> None:
        """The epoch is complete: the next starts at its first batch with no carried state."""
        self.progress["epoch"] += 1
        self.progress["batch"], self.hidden = 0, None

    def timed_step(self, plan: EpochPlan, index: int) -> tuple[float, int]:
        """`step`, its duration feeding the budget's and the ETA's estimate of the next."""
        began = self.clock()
        loss, tokens = self.step(plan, index)
        took = self.clock() - began
        self.step_seconds = 0.9 * self.step_seconds + 0.1 * took if self.step_seconds else took
        self.last_step_seconds = took
        return loss, tokens

    def scheduled_lr(self) -> float:
        """The learning rate after the decays so far (and the budget spent), before warm-up."""
        lr = self.config.lr * self.progress["lr_scale"]
        if self.config.lr_schedule == "budget":
            lr *= max(1.0 - self.budget_used, LR_FLOOR)
        return lr

    def _set_lr(self) -> float:
        config, step = self.config, self.progress["step"]
        warm = min(1.0, (step + 1) / config.warmup_steps) if config.warmup_steps else 1.0
        lr = self.scheduled_lr() * warm
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        return lr

    def step(self, plan: EpochPlan, index: int) -> tuple[float, int]:
        """One optimiser step on batch `index`; returns (mean loss, tokens)."""
        batch = self.batcher.batch(plan, index, self._lanes())
        device = self.runtime.device
        inputs = torch.from_numpy(batch.inputs).to(device)  # (B, T)
        targets = torch.from_numpy(batch.targets).to(device)  # (B, T)
        resets = torch.from_numpy(batch.resets).to(device)  # (B, T)
        with self.autocast():
            logits, hidden = self.ddp(inputs, self.hidden, resets)  # (B, T, V)
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
        if self.average is not None:
            self.average.update(self.progress["step"])
        self.last_lr = lr
        return float(loss.detach()), batch.tokens

    def validate(self, deadline: float | None = None) -> tuple[Totals | None, bool]:
        """Held-out NLL summed over all processes' shares, and whether every piece was scored.

        With a `deadline` (the end of the time budget) pieces are scored a group at a time and
        scoring stops before a group that would end past it (the first one as the measured
        scoring speed foretells, the others as long as the one before). Groups are cut from the
        length-sorted share, so they are the very batches one `score_pieces` call would make:
        the same figures either way.
        """
        if not self.valid_ids:
            return None, True
        share = sorted(self.valid_ids[self.runtime.rank :: self.runtime.world_size], key=len)
        totals, scored, took = Totals(), 0, 0.0
        with self.autocast(), averaged(self.average):
            while scored < len(share):
                began, group = self.clock(), share[scored : scored + VALID_GROUP]
                guess = took if scored else sum(map(len, group)) * self.scoring_per_token()
                if deadline is not None and began + guess >= deadline:
                    break  # the next group (as long as the last one) would end past the deadline
                totals.add(score_pieces(self.model, group))
                scored, took = scored + len(group), self.clock() - began
                spent, tokens = self.scoring_seconds
                self.scoring_seconds = (spent + took, tokens + sum(len(g) + 1 for g in group))
        summed = distributed.all_reduce_sum([*totals.as_list(), scored], self.runtime)
        totals = Totals(summed[0], int(summed[1]), int(summed[2]), int(summed[3]))
        complete = int(summed[4]) == len(self.valid_ids)
        if not complete:
            self.note(
                f"the validation at step {self.progress['step']} scored {int(summed[4])} of "
                f"{len(self.valid_ids)} pieces before the time budget ran out: not recorded"
            )
        return totals, complete

    def checkpoint(self, metrics: dict[str, Any]) -> Checkpoint:
        return Checkpoint(
            self.model,
            self.corpus.tokenizer_config,
            self.corpus.vocabulary,
            to_dict(self.config),
            self.corpus.meta.get("config", {}),
            metrics,
        )

    def evaluate_and_save(
        self, started: float, scheduled: bool = True, deadline: float | None = None
    ) -> bool:
        """Validate, save last (and best) and the training state, log; True when early stopping
        says stop.

        An unscheduled validation (a budget ran out inside an epoch) may record a new best but
        never counts as a plateau, so a resumed run decays the learning rate exactly as an
        uninterrupted one would. A validation cut short by the deadline counts for nothing.
        """
        began = self.clock()
        (totals, complete), progress = self.validate(deadline), self.progress
        progress["seconds"] = self.clock() - started
        loss = totals.nll_per_token if totals and complete else None
        improved = loss is not None and (progress["best"] is None or loss < progress["best"] - 1e-4)
        if improved:
            progress["best"] = loss
            progress["bad_evals"] = 0 if scheduled else progress["bad_evals"]
        elif loss is not None and scheduled:
            progress["bad_evals"] += 1
            if progress["bad_evals"] % self.config.lr_patience == 0:
                progress["lr_scale"] *= self.config.lr_decay
        metrics = self._metrics(loss, totals.accuracy if loss is not None else None)
        self._save(metrics, improved or not (self.run_dir / BEST_CHECKPOINT).exists())
        self.finish_seconds = self.clock() - began
        self.valid_loss = loss if loss is not None else self.valid_loss
        patience = self.config.patience
        return bool(patience and progress["bad_evals"] >= patience)

    def save_position(self, started: float) -> None:
        """A resumable state at this step, without a validation (a periodic save, or one on
        an interrupt): the schedule and the best are as they were."""
        self.progress["seconds"] = self.clock() - started
        self._save(self._metrics(None, None), not (self.run_dir / BEST_CHECKPOINT).exists())

    def _metrics(self, loss: float | None, accuracy: float | None) -> dict[str, Any]:
        """What a checkpoint records of the run (and metrics.csv of a save)."""
        progress = self.progress
        return {
            "step": progress["step"],
            "epoch": round(self.epochs_done(), 4),
            "valid_loss": loss,
            "valid_accuracy": accuracy,
            "best_valid_loss": progress["best"],
            "best_chosen_by": "validation loss" if progress["best"] is not None else "none: last",
            "seconds": progress["seconds"],
        }

    def _save(self, metrics: dict[str, Any], best: bool) -> None:
        """Checkpoints and the metrics row first, the training state last: a kill in between
        resumes from the previous state, whose step is the last row kept in metrics.csv."""
        best = best or not self.valid_ids
        if self.runtime.is_main:
            checkpoint = self.checkpoint(metrics)
            with averaged(self.average):  # the weights validation scored
                checkpoint.save(self.run_dir / LAST_CHECKPOINT)
                if best:
                    checkpoint.save(self.run_dir / BEST_CHECKPOINT)
            self.log({**metrics, "lr": self.scheduled_lr()})  # after this validation's decay
        ranks = distributed.gather_to_main(rank_state(self.hidden), self.runtime)
        if ranks is not None:
            path = state_path(self.run_dir)
            average = {"average": self.average.tensors} if self.average else {}
            save_train_state(path, self.model, self.optimizer, ranks, self.progress, **average)
        self.saved_step, self.saved_at = self.progress["step"], self.clock()

    def log(self, row: dict[str, Any]) -> None:
        append_metrics(self.run_dir, row)

    def run(self) -> TrainResult:
        return run_epochs(self)


__all__ = ["TrainResult", "Trainer"]
