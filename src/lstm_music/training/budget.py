"""A run's clock-driven decisions: when the time budget ends the training, when a periodic save
is due, when a signal stops the run, and how long the closing work will take.

The time budget covers the whole run (start-up, steps, the closing validation and save, the
plot, the closing report): before each step the trainer asks whether one more step and then
all the closing work would still end inside it. A resumable state is saved at least every
`SAVE_SECONDS`, mid-epoch if need be, so a crash or a kill loses minutes at most.
"""

from __future__ import annotations

from lstm_music.training import distributed
from lstm_music.training.closing import reserve_seconds
from lstm_music.training.interrupt import TrainingInterrupted
from lstm_music.training.loop import time_is_up

SAVE_SECONDS = 120.0  # a resumable state at least this often, mid-epoch if need be


class RunClock:
    """Mixed into `Trainer` (which has the attributes used here: config, progress, runtime,
    corpus, the clock, the measured step and validation times, the last save)."""

    def at_step_boundary(self, started: float) -> str:
        """Before each step: why the run stops here ("interrupted", a budget), or "" to go on,
        after a periodic save when one is due. Every process decides alike."""
        config, progress = self.config, self.progress
        if config.max_steps and progress["step"] >= config.max_steps:
            return "max-steps"
        now = self.clock()
        closing = self.finish_guess() + self.closing_guess()
        step = max(self.step_seconds, self.last_step_seconds)  # the smoothed one lags a slowdown
        late = time_is_up(now - started, config.max_minutes * 60, step, closing)
        due = now - self.saved_at >= SAVE_SECONDS and progress["step"] != self.saved_step
        share = self.budget_share(now - started, closing)
        flags = [late, self.signals.received is not None, due, share]
        *flags, share = distributed.all_reduce_sum(flags, self.runtime)
        late, interrupted, due = (v > 0 for v in flags)
        self.budget_used = share / self.runtime.world_size  # one rate on every process
        if interrupted:
            return "interrupted"
        if late:
            return "max-minutes"
        if due:
            self.save_position(started)
        return ""

    def budget_share(self, elapsed: float, closing: float) -> float:
        """How much of the run's budget is spent (0..1): of the first of the time, step and
        epoch budgets to end, the time one net of the closing work (`closing` seconds); the
        learning-rate schedule "budget" anneals by it."""
        config = self.config
        shares = [self.epochs_done() / config.epochs]
        if config.max_steps:
            shares.append(self.progress["step"] / config.max_steps)
        if config.max_minutes:
            training = config.max_minutes * 60 - closing
            shares.append(elapsed / max(training, 1.0))
        return min(max(shares), 1.0)

    def deadline(self, started: float) -> float | None:
        """When a validation must end: the time budget's end less the closing work's time."""
        if not self.config.max_minutes:
            return None
        return started + self.config.max_minutes * 60 - self.closing_guess()

    def scoring_per_token(self) -> float:
        """Seconds to score one held-out token: as measured by the validations so far, or
        before any, a fifth of a training step's time per token (a forward pass in long
        windows; measured 0.1-0.2 on a CPU)."""
        spent, tokens = self.scoring_seconds
        if tokens:
            return spent / tokens
        return 0.2 * self.step_seconds / max(self.config.batch_size * self.config.window, 1)

    def closing_guess(self) -> float:
        """Seconds the work after the last validation needs: the plot, and the report."""
        budget = self.config.max_minutes * 60
        corpus = self.corpus if self.report else None
        return reserve_seconds(corpus, self.scoring_per_token(), budget)

    def interrupted(self) -> TrainingInterrupted:
        """The error that says where the interrupted run's state is (or that it has none)."""
        step = self.saved_step if self.saved_step >= 0 else None
        return TrainingInterrupted(self.signals.received or 2, self.run_dir, step)

    def finish_guess(self) -> float:
        """Seconds the closing validation and save will take: as long as the last one did, or
        before any, at `scoring_per_token`. The deadline in `validate` backs it up."""
        if self.finish_seconds is not None:
            return self.finish_seconds
        return self.valid_tokens * self.scoring_per_token()


__all__ = ["SAVE_SECONDS", "RunClock"]
