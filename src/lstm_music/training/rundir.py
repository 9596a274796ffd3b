"""The run folder around a training run: config.json, metrics.csv, and starting a run over.

The trainer writes checkpoints and the training state (see `resume`); this module writes the
plain files beside them and runs the folder's life cycle: cleared for a replaced run, left-over
temporary files removed, old checkpoints set aside when a run starts over. The files' names and
their readers are `lstm_music.model.runs`'s.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import torch

from lstm_music.fsutil import require_regular_file
from lstm_music.model.runs import METRIC_COLUMNS, METRICS_FILE
from lstm_music.training.resume import prepare_run_dir
from lstm_music.training.runfiles import clear_run, remove_leftovers, set_aside, truncate_metrics


def append_metrics(run_dir: Path, row: dict[str, Any]) -> None:
    """One row of metrics.csv (the header first, for a new file); missing figures stay empty."""
    path = run_dir / METRICS_FILE
    new = not path.exists()
    columns = METRIC_COLUMNS
    if not new:  # a run resumed from an older version keeps its file's columns
        require_regular_file(path, f"cannot log to {path}")
        with path.open(newline="") as file:
            columns = tuple(next(csv.reader(file), METRIC_COLUMNS)) or METRIC_COLUMNS
    with path.open("a", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=columns, extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})


def open_run_dir(
    run_dir: Path,
    corpus_path,
    settings: dict[str, Any],
    runtime,
    fresh: bool,
    resume: bool,
    valid_pieces: int,
) -> list[str]:
    """Ready `run_dir` for a run (cleared first when `fresh` replaces a run); the notes to tell.

    Rank 0 touches the folder; every process waits for it before going on."""
    removed = 0
    if runtime.is_main:
        if fresh and not resume:
            clear_run(run_dir)
        elif run_dir.is_dir():
            removed = remove_leftovers(run_dir)
    if runtime.distributed:
        torch.distributed.barrier()
    prepare_run_dir(run_dir, corpus_path, settings, resume, runtime, valid_pieces)
    return [f"removed {removed} temporary files an interrupted run left"] if removed else []


def drop_metrics_after(run_dir: Path, step: int, runtime) -> list[str]:
    """metrics.csv cut back to the resumed step (rank 0); the note saying so, if rows went."""
    if not runtime.is_main:
        return []
    dropped = truncate_metrics(run_dir / METRICS_FILE, step, METRIC_COLUMNS)
    return [f"metrics.csv: dropped {dropped} rows logged after step {step}"] if dropped else []


def set_aside_clause(run_dir: Path, runtime) -> str:
    """Before a run starts over, rank 0 renames its old best/last (once every process has read
    the state), so no trained model is lost; the clause that says where they went."""
    if runtime.distributed:
        torch.distributed.barrier()
    kept = set_aside(run_dir) if runtime.is_main else []
    return f" (its checkpoints kept as {' and '.join(kept)})" if kept else ""
