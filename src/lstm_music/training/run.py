"""`train`: one run from start to end. A fresh or resumed `Trainer` on its run folder (a run
that cannot be resumed starts over, saying why), the epoch loop, then the closing report, all
inside the time budget; signals leave a resumable state (see `interrupt`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from lstm_music.corpus.store import Corpus
from lstm_music.errors import LstmMusicError
from lstm_music.model.checkpoint import CheckpointError
from lstm_music.settings import to_dict
from lstm_music.training import distributed
from lstm_music.training.closing import closing_report
from lstm_music.training.finetune import load_initial_model
from lstm_music.training.interrupt import Interrupted, StopSignals, TrainingInterrupted
from lstm_music.training.loop import TrainResult
from lstm_music.training.resume import NO_VALIDATION, resumable, write_error
from lstm_music.training.rundir import drop_metrics_after, open_run_dir, set_aside_clause
from lstm_music.training.settings import TrainConfig
from lstm_music.training.trainer import Trainer


def train(
    corpus_path: str | Path,
    run_dir: str | Path,
    config: TrainConfig,
    resume: bool = False,
    progress: bool = True,
    overwrite: bool = False,
    notify: Callable[[str], None] | None = None,
    on_epoch: Callable[[str], None] | None = None,
    report: bool = False,
    started_at: float | None = None,
) -> TrainResult:
    """Train a model on a prepared corpus; `resume` continues the run in `run_dir` (or starts
    it over, saying why, when nothing usable was saved), `overwrite` replaces a finished run.

    `notify` hears each note (also in the result's `notes`) as it arises; with `progress`,
    a progress bar runs and `on_epoch` hears a one-line summary after each epoch. With
    `report`, the closing report follows (the result's `report`; report.json). A time budget
    covers it all, from `started_at` (a `time.perf_counter()` reading: when the command
    began; default now) to the report's end. SIGINT and SIGTERM stop the run at the next step
    with a resumable state saved: `TrainingInterrupted` says where.
    """
    runtime = distributed.start(config.device)
    run_dir, trainer = Path(run_dir), None
    with StopSignals() as signals:
        try:
            trainer = _trainer(corpus_path, run_dir, config, runtime, resume, progress, overwrite)
            trainer.notify, trainer.on_epoch = notify if runtime.is_main else None, on_epoch
            trainer.signals, trainer.origin, trainer.report = signals, started_at, report
            notes, trainer.notes = trainer.notes, []
            for note in notes:
                trainer.note(note)
            result = trainer.run()
            if report and runtime.is_main:
                result.report = closing_report(trainer)
        except OSError as error:
            raise LstmMusicError(write_error(error, run_dir)) from error
        except Interrupted as stop:  # a signal after the last save (or during start-up)
            if trainer is None or trainer.saved_step < 0:
                raise
            raise TrainingInterrupted(stop.signum, run_dir, trainer.saved_step) from None
        finally:
            distributed.stop()
    return result


def _trainer(corpus_path, run_dir, config, runtime, resume, progress, overwrite) -> Trainer:
    """The trainer of a new or resumed run, with the notes of how it began."""
    corpus = Corpus.load(corpus_path)
    notes: list[str] = []
    restart = resume and not resumable(run_dir, runtime.world_size, notes)
    resume = resume and not restart  # asked to resume, nothing usable: start over
    if restart:
        notes[-1] += set_aside_clause(run_dir, runtime)
    overwrite = overwrite or restart
    trainer = _start(corpus, corpus_path, run_dir, config, runtime, progress, overwrite, resume)
    if resume:
        trainer = _resume(trainer, corpus, corpus_path, config, runtime, progress)
    trainer.notes = notes + trainer.notes + ([] if trainer.valid_ids else [NO_VALIDATION])
    return trainer


def _start(corpus, corpus_path, run_dir, config, runtime, progress, overwrite, resume) -> Trainer:
    """A fresh trainer on a prepared run folder (cleared first when `overwrite` replaces it),
    starting from the weights of `config.init` when it names a model."""
    base = None
    if config.init and not resume:  # checked before the run folder is touched
        config, base = load_initial_model(config, corpus)
    valid = len(corpus.split("valid"))
    settings = to_dict(config)
    notes = open_run_dir(run_dir, corpus_path, settings, runtime, overwrite, resume, valid)
    trainer = Trainer(corpus, run_dir, config, runtime, progress)
    if base is not None:
        trainer.model.load_state_dict(base.model.state_dict())
        if trainer.average is not None:
            trainer.average.reset()
    trainer.notes += notes
    return trainer


def _resume(trainer: Trainer, corpus, corpus_path, config, runtime, progress) -> Trainer:
    """The trainer restored from its state; or, when the state cannot be read, a fresh one on
    a cleared run folder, with a note saying why."""
    try:
        trainer.resume()
    except CheckpointError as error:
        aside = set_aside_clause(trainer.run_dir, runtime)
        fresh = _start(corpus, corpus_path, trainer.run_dir, config, runtime, progress, True, False)
        fresh.notes.append(f"cannot resume: {error}; starting the run over{aside}")
        return fresh
    trainer.notes += drop_metrics_after(trainer.run_dir, trainer.progress["step"], runtime)
    return trainer


__all__ = ["TrainResult", "train"]
