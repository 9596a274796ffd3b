"""The epoch loop: steps, progress bar, validation points, budgets, and the final plot.

Epochs are counted one way everywhere (bar, per-epoch line, metrics, summary): completed epochs
plus the done share of the current one, so 4.4 means four epochs and 40% of the fifth.

The loop drives a `Trainer` (training/trainer.py) through its public methods only; it imports
nothing from there, so the trainer can call `run_epochs(self)` without an import cycle.
"""

from __future__ import annotations

import io
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lstm_music.errors import SettingError
from lstm_music.training.resume import VALID_SCORING


@dataclass
class TrainResult:
    """What a finished (or stopped) run did, for the caller's summary."""

    run_dir: Path
    steps: int
    epochs: float  # completed epochs plus the done share of the current one (4.4 = 4 and 40%)
    best_valid_loss: float | None
    seconds: float
    stopped_by: str
    notes: list[str] = field(default_factory=list)  # what the user should hear about this run
    best_is_last: bool = False  # no validation data: "best" is simply the last checkpoint
    batch_utilisation: float = 0.0  # share of the batch capacity holding real targets
    report: Any = None  # the closing report (evaluation.report.HeldOutReport), when asked for


def fresh_progress(plan_version: int) -> dict[str, Any]:
    """A new run's position and schedule (saved in the training state, restored on resume)."""
    return {"step": 0, "epoch": 0, "batch": 0, "best": None, "bad_evals": 0, "lr_scale": 1.0,
            "seconds": 0.0, "stopped_by": "", "plan": plan_version,
            "valid_scoring": VALID_SCORING}  # fmt: skip


def loss_is_finite(value: float) -> bool:
    """False for inf and NaN: the run has diverged and further steps only spread the damage."""
    return math.isfinite(value)


class _Throughput:
    """Smoothed loss (carried on from the epoch before: restarting it at each epoch's first
    batch drew a saw-tooth of its own) and tokens per second since the epoch began."""

    def __init__(self, loss: float | None = None) -> None:
        self.tokens, self.started, self.loss = 0, time.perf_counter(), loss

    def add(self, loss: float, tokens: int) -> None:
        self.tokens += tokens
        self.loss = loss if self.loss is None else 0.95 * self.loss + 0.05 * loss

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / max(time.perf_counter() - self.started, 1e-9)


def time_is_up(elapsed: float, budget: float, step_seconds: float, finish_seconds: float) -> bool:
    """True when one more step and then the closing validation and save would overrun `budget`
    (seconds; 0 = none): the time budget covers the whole run, not just the steps."""
    return budget > 0 and elapsed + step_seconds + finish_seconds >= budget


def format_epochs(epochs: float) -> str:
    """4.4 -> "4.4", 0.032 -> "0.03": a short run is not "0 epochs"."""
    return f"{epochs:.2f}" if 0 < epochs < 1 else f"{epochs:.1f}"


def seconds_left(
    config, elapsed: float, step: int, epochs_done: float, batches: int, step_s: float, finish_s
) -> float:
    """Seconds until the first budget ends the run (time, steps or epochs), validations included.

    Early stopping cannot be foreseen, so the run may end sooner.
    """
    epochs_left = max(config.epochs - epochs_done, 0.0)
    validations = math.ceil(epochs_left - 1e-9)  # one per epoch still to finish
    if config.eval_every:
        validations += int(epochs_left * batches) // config.eval_every
    ends = [epochs_left * batches * step_s + validations * finish_s]
    if config.max_steps:
        ends.append(max(config.max_steps - step, 0) * step_s + finish_s)
    if config.max_minutes:
        ends.append(config.max_minutes * 60 - elapsed)
    return max(min(ends), 0.0)


def _clock_text(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


def run_epochs(trainer) -> TrainResult:
    """Epochs until a budget, early stopping or the epoch count ends the run; the run's result.

    `trainer` is a `Trainer`; each finished epoch is told to its `on_epoch` callback. The time
    budget counts from `trainer.origin` (the command's start) when set. SIGINT and SIGTERM are
    noted meanwhile: the loop saves the exact position and raises `TrainingInterrupted`."""
    config, progress = trainer.config, trainer.progress
    now = trainer.clock()
    started = (now if trainer.origin is None else min(trainer.origin, now)) - progress["seconds"]
    trainer.started, trainer.saved_at = started, now
    trainer.signals.deferring = True
    stopped_by = ""
    while progress["epoch"] < config.epochs and not stopped_by:
        plan = trainer.plan_epoch()
        stopped_by = _run_epoch(trainer, plan, started)
        if stopped_by == "interrupted":
            if progress["step"] not in (0, trainer.saved_step):
                trainer.save_position(started)
            raise trainer.interrupted()
        if progress["batch"] >= plan.batches:  # the epoch is complete
            trainer.end_epoch()
            if trainer.evaluate_and_save(started, deadline=trainer.deadline(started)):
                stopped_by = stopped_by or "early stopping"
        elif stopped_by != "early stopping" and trainer.saved_step != progress["step"]:
            # a budget ran out inside the epoch: save the exact position for --resume
            trainer.evaluate_and_save(started, scheduled=False, deadline=trainer.deadline(started))
        if trainer.show and trainer.on_epoch:
            trainer.on_epoch(
                f"{format_epochs(trainer.epochs_done())} epochs: step {progress['step']}, "
                f"validation loss {_fmt(trainer.valid_loss)}, best {_fmt(progress['best'])}"
            )
    trainer.signals.deferring = False  # from here a signal stops at once: all is saved
    if trainer.signals.received is not None:  # it came during the last validation
        raise trainer.interrupted()
    progress["stopped_by"] = stopped_by or "epochs"
    seconds = trainer.clock() - started
    if trainer.runtime.is_main:
        _plot(trainer)
    return TrainResult(
        trainer.run_dir,
        progress["step"],
        trainer.epochs_done(),
        progress["best"],
        seconds,
        progress["stopped_by"],
        trainer.notes,
        not trainer.valid_ids,
        trainer.utilisation or trainer.plan_epoch().utilisation,  # resumed after its last epoch
    )


def _run_epoch(trainer, plan, started: float) -> str:
    """Steps from the saved position to the end of the epoch; why it stopped early, or ""."""
    from tqdm import tqdm

    config, progress = trainer.config, trainer.progress
    bar = tqdm(
        total=plan.batches,
        initial=progress["batch"],
        disable=not trainer.show,
        desc=f"{format_epochs(trainer.epochs_done())}/{config.epochs} epochs",
        unit="batch",
        dynamic_ncols=True,
        leave=False,
    )
    meter = _Throughput(trainer.smoothed_loss)
    try:
        for index in range(progress["batch"], plan.batches):
            stopped_by = trainer.at_step_boundary(started)  # before the step: room for it and
            if stopped_by:  # the closing work, even right after an epoch's validation
                return stopped_by
            _timed_step(trainer, plan, index, meter)
            bar.update(1)
            if trainer.show:
                _show(trainer, bar, meter, started)
            if trainer.runtime.is_main and progress["step"] % 10 == 0:
                trainer.log(
                    {
                        "step": progress["step"],
                        "seconds": trainer.clock() - started,
                        "epoch": round(trainer.epochs_done(), 4),
                        "lr": trainer.last_lr,
                        "train_loss": meter.loss,
                        "tokens_per_second": meter.tokens_per_second,
                        "batch_utilisation": round(trainer.utilisation, 4),
                    }
                )
            due = config.eval_every and progress["step"] % config.eval_every == 0
            if due and trainer.evaluate_and_save(started, deadline=trainer.deadline(started)):
                return "early stopping"
        return ""
    finally:
        trainer.smoothed_loss = meter.loss
        bar.close()


def _timed_step(trainer, plan, index: int, meter: _Throughput) -> None:
    """One step (timed by the trainer, for the budget's and the ETA's estimate of the next)."""
    loss, tokens = trainer.timed_step(plan, index)
    if not loss_is_finite(loss):
        raise SettingError(
            f"training diverged at step {trainer.progress['step']} (loss "
            f"{loss}); try a lower learning rate or gradient clipping",
            "lr",
        )
    trainer.progress["batch"] = index + 1
    meter.add(loss, tokens * trainer.runtime.world_size)


def _show(trainer, bar, meter: _Throughput, started: float) -> None:
    """The bar's figures: epochs in the one count, loss, speed, and the whole run's time left."""
    progress = trainer.progress
    left = seconds_left(
        trainer.config,
        trainer.clock() - started,
        progress["step"],
        trainer.epochs_done(),
        trainer.batches,
        trainer.step_seconds,
        trainer.finish_guess(),
    )
    bar.set_description(
        f"{format_epochs(trainer.epochs_done())}/{trainer.config.epochs} epochs", refresh=False
    )
    bar.set_postfix(
        loss=f"{meter.loss:.3f}",
        val=_fmt(trainer.valid_loss),
        tok_s=f"{meter.tokens_per_second:,.0f}",
        run_left=_clock_text(left),
        refresh=False,
    )


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.3f}"


def _plot(trainer) -> None:
    """loss.png, written whole or not at all (a kill mid-write leaves the old picture)."""
    from lstm_music.fsutil import write_bytes_atomically
    from lstm_music.model.runs import LOSS_PLOT, METRICS_FILE
    from lstm_music.render.plots import plot_losses

    picture = io.BytesIO()
    try:
        plot_losses(
            trainer.run_dir / METRICS_FILE,
            picture,
            title=f"{trainer.run_dir.name}: {trainer.config.preset} preset",
        )
    except ImportError:
        trainer.note("matplotlib is not installed: loss.png not written (pip install matplotlib)")
        return
    write_bytes_atomically(trainer.run_dir / LOSS_PLOT, picture.getvalue())
