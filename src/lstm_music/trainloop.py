"""The epoch loop: steps, progress bar, validation points, budgets, and the final plot."""

from __future__ import annotations

import time

from lstm_music.errors import LstmMusicError


def run_epochs(trainer):  # -> TrainResult
    from tqdm import tqdm

    from lstm_music.train import TrainResult, loss_is_finite

    config, progress = trainer.config, trainer.progress
    started = time.perf_counter() - progress["seconds"]
    stopped_by = ""
    while progress["epoch"] < config.epochs and not stopped_by:
        plan = trainer._plan()
        bar = tqdm(
            total=plan.batches,
            initial=progress["batch"],
            disable=not trainer.show,
            desc=f"epoch {progress['epoch'] + 1}/{config.epochs}",
            unit="batch",
            dynamic_ncols=True,
            leave=False,
        )
        window_tokens, window_start, smooth = 0, time.perf_counter(), None
        for index in range(progress["batch"], plan.batches):
            loss, tokens = trainer.step(plan, index)
            if not loss_is_finite(loss):
                raise LstmMusicError(
                    f"training diverged at step {progress['step']} (loss {loss}); "
                    "try a lower --lr or a --clip value"
                )
            progress["batch"] = index + 1
            window_tokens += tokens * trainer.runtime.world_size
            smooth = loss if smooth is None else 0.95 * smooth + 0.05 * loss
            elapsed = time.perf_counter() - window_start
            speed = window_tokens / max(elapsed, 1e-9)
            bar.update(1)
            bar.set_postfix(
                loss=f"{smooth:.3f}",
                val=_fmt(getattr(trainer, "valid_loss", None)),
                tok_s=f"{speed:,.0f}",
                refresh=False,
            )
            if trainer.runtime.is_main and progress["step"] % 10 == 0:
                trainer.log(
                    {
                        "step": progress["step"],
                        "epoch": progress["epoch"] + progress["batch"] / plan.batches,
                        "seconds": time.perf_counter() - started,
                        "lr": trainer.last_lr,
                        "train_loss": smooth,
                        "tokens_per_second": speed,
                    }
                )
            stopped_by = trainer.out_of_budget(started)
            if stopped_by:
                break
            due = config.eval_every and progress["step"] % config.eval_every == 0
            if due and trainer.evaluate_and_save(started):
                stopped_by = "early stopping"
                break
        bar.close()
        if progress["batch"] >= plan.batches:  # the epoch is complete
            progress["epoch"], progress["batch"], trainer.hidden = progress["epoch"] + 1, 0, None
            if trainer.evaluate_and_save(started):
                stopped_by = stopped_by or "early stopping"
        else:  # stopped inside the epoch: save the exact position for --resume
            trainer.evaluate_and_save(started, scheduled=False)
        if trainer.show:
            print(
                f"epoch {progress['epoch']}: step {progress['step']}, "
                f"validation loss {_fmt(trainer.valid_loss)}, best {_fmt(progress['best'])}"
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
