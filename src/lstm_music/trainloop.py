"""The epoch loop: steps, progress bar, validation points, budgets, and the final plot."""

from __future__ import annotations

import time

from lstm_music.errors import LstmMusicError


class _Throughput:
    """Smoothed loss and tokens per second since the epoch began, for the bar and the log."""

    def __init__(self) -> None:
        self.tokens, self.started, self.loss = 0, time.perf_counter(), None

    def add(self, loss: float, tokens: int) -> None:
        self.tokens += tokens
        self.loss = loss if self.loss is None else 0.95 * self.loss + 0.05 * loss

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / max(time.perf_counter() - self.started, 1e-9)


def run_epochs(trainer):  # -> TrainResult
    from lstm_music.train import TrainResult

    config, progress = trainer.config, trainer.progress
    started = time.perf_counter() - progress["seconds"]
    stopped_by = ""
    while progress["epoch"] < config.epochs and not stopped_by:
        plan = trainer._plan()
        stopped_by = _run_epoch(trainer, plan, started)
        if progress["batch"] >= plan.batches:  # the epoch is complete
            progress["epoch"], progress["batch"], trainer.hidden = progress["epoch"] + 1, 0, None
            if trainer.evaluate_and_save(started):
                stopped_by = stopped_by or "early stopping"
        elif stopped_by != "early stopping":  # a budget ran out inside the epoch: save the
            trainer.evaluate_and_save(started, scheduled=False)  # exact position for --resume
        if trainer.show:
            print(
                f"epoch {progress['epoch']}: step {progress['step']}, validation loss "
                f"{_fmt(trainer.valid_loss)}, best {_fmt(progress['best'])}"
            )
    progress["stopped_by"] = stopped_by or "epochs"
    seconds = time.perf_counter() - started
    if trainer.runtime.is_main:
        _plot(trainer)
    return TrainResult(
        trainer.run_dir,
        progress["step"],
        progress["epoch"],
        progress["best"],
        seconds,
        progress["stopped_by"],
    )


def _run_epoch(trainer, plan, started: float) -> str:
    """Steps from the saved position to the end of the epoch; why it stopped early, or ""."""
    from tqdm import tqdm

    from lstm_music.train import loss_is_finite

    config, progress = trainer.config, trainer.progress
    bar = tqdm(
        total=plan.batches,
        initial=progress["batch"],
        disable=not trainer.show,
        desc=f"epoch {progress['epoch'] + 1}/{config.epochs}",
        unit="batch",
        dynamic_ncols=True,
        leave=False,
    )
    meter = _Throughput()
    try:
        for index in range(progress["batch"], plan.batches):
            loss, tokens = trainer.step(plan, index)
            if not loss_is_finite(loss):
                raise LstmMusicError(
                    f"training diverged at step {progress['step']} (loss "
                    f"{loss}); try a lower --lr or a --clip value"
                )
            progress["batch"] = index + 1
            meter.add(loss, tokens * trainer.runtime.world_size)
            bar.update(1)
            bar.set_postfix(
                loss=f"{meter.loss:.3f}",
                val=_fmt(getattr(trainer, "valid_loss", None)),
                tok_s=f"{meter.tokens_per_second:,.0f}",
                refresh=False,
            )
            if trainer.runtime.is_main and progress["step"] % 10 == 0:
                trainer.log(
                    {
                        "step": progress["step"],
                        "seconds": time.perf_counter() - started,
                        "epoch": progress["epoch"] + progress["batch"] / plan.batches,
                        "lr": trainer.last_lr,
                        "train_loss": meter.loss,
                        "tokens_per_second": meter.tokens_per_second,
                    }
                )
            stopped_by = trainer.out_of_budget(started)
            if stopped_by:
                return stopped_by
            due = config.eval_every and progress["step"] % config.eval_every == 0
            if due and trainer.evaluate_and_save(started):
                return "early stopping"
        return ""
    finally:
        bar.close()


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.3f}"


def _plot(trainer) -> None:
    from lstm_music.plots import plot_losses

    try:
        plot_losses(
            trainer.run_dir / "metrics.csv",
            trainer.run_dir / "loss.png",
            title=f"{trainer.run_dir.name}: {trainer.config.preset} preset",
        )
    except ImportError:
        print("matplotlib is not installed: loss.png not written (pip install matplotlib)")
