"""The run folder `train` writes: its files' names, reading its records, and a summary per run.

One module knows the layout, so that training (which writes the folder), the closing report
(report.json), the web catalog and `lstm-music runs` name and read the same files the same way.
Its readers never trust a folder: a missing, damaged or hostile file (a named pipe, a huge or
deeply nested config.json, a crafted checkpoint) is skipped or reported, never blocks a reader
and never ends a listing. Nothing here imports torch until a checkpoint's header is read.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from lstm_music.errors import LstmMusicError
from lstm_music.fsutil import is_regular_file, not_regular

CONFIG_FILE = "config.json"  # the resolved settings, the corpus, the version that trained
METRICS_FILE = "metrics.csv"  # one row per save, columns METRIC_COLUMNS
BEST_CHECKPOINT = "best.safetensors"  # lowest validation loss (the last without valid pieces)
LAST_CHECKPOINT = "last.safetensors"
STATE_FILE = "train_state.safetensors"  # everything a resumed run needs (training.resume)
LOSS_PLOT = "loss.png"
REPORT_FILE = "report.json"  # the closing report (evaluation.report.run_report)
# The run's own files: what clearing a run removes, and when the run last wrote.
RUN_FILES = (BEST_CHECKPOINT, LAST_CHECKPOINT, STATE_FILE, METRICS_FILE, LOSS_PLOT, REPORT_FILE,
             CONFIG_FILE)  # fmt: skip
# A folder holding one of these is a run (a picture or a report alone is not).
RUN_MARKERS = (CONFIG_FILE, METRICS_FILE, BEST_CHECKPOINT, LAST_CHECKPOINT, STATE_FILE)
METRIC_COLUMNS = ("step", "epoch", "seconds", "lr", "train_loss", "tokens_per_second",
                  "valid_loss", "valid_accuracy", "batch_utilisation")  # fmt: skip

MAX_CONFIG = 1_000_000  # bytes: a run's config.json is a few kilobytes
MAX_DEPTH = 8  # folders below a searched root
MAX_FOLDERS = 5000  # a root pointed at a home folder must not stall a listing
MAX_CHECKPOINTS = 500
MAX_RUNS = 500


def walk_folders(root: Path) -> Iterator[tuple[Path, list[str]]]:
    """Each folder under `root` (itself first) with its file names, sorted; hidden and
    symlinked folders are skipped, depth and count bounded, so a huge or looping tree cannot
    stall a search."""
    for visited, (folder, dirs, files) in enumerate(os.walk(root)):
        if visited >= MAX_FOLDERS:
            return
        depth = len(Path(folder).relative_to(root).parts)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")) if depth < MAX_DEPTH else []
        yield Path(folder), sorted(files)


def find_checkpoints(root: Path) -> list[Path]:
    """Per folder under `root`: its best checkpoint, else every checkpoint-like file in it
    (training states are no models), at most MAX_CHECKPOINTS."""
    found: list[Path] = []
    for folder, files in walk_folders(root):
        names = [
            name
            for name in files
            if name.endswith(".safetensors") and not name.startswith((".", "train_state"))
        ]
        if BEST_CHECKPOINT in names:
            names = [BEST_CHECKPOINT]
        found.extend(folder / name for name in names)
        if len(found) >= MAX_CHECKPOINTS:
            break
    return found[:MAX_CHECKPOINTS]


def run_checkpoint(run_dir: Path) -> Path | None:
    """The checkpoint a run folder stands for: its best, else its last; None without either."""
    for name in (BEST_CHECKPOINT, LAST_CHECKPOINT):
        if (run_dir / name).exists():
            return run_dir / name
    return None


def _load_config(path: Path) -> dict[str, Any]:
    """config.json's object; a ValueError (or the system's OSError) says what is wrong."""
    problem = not_regular(path)  # a named pipe would block the read
    if problem:
        raise ValueError(problem)
    if path.stat().st_size > MAX_CONFIG:
        raise ValueError(f"over {MAX_CONFIG:,} bytes: not one that train wrote")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except RecursionError as error:
        raise ValueError("nested too deep: not one that train wrote") from error
    except ValueError as error:
        raise ValueError(f"not JSON ({error})") from error
    if not isinstance(config, dict):
        raise ValueError("not a JSON object")
    return config


def read_config(run_dir: str | Path) -> dict[str, Any]:
    """The resolved settings a run saved (config.json), to resume or describe it."""
    path = Path(run_dir) / CONFIG_FILE
    try:
        return _load_config(path)
    except (OSError, ValueError) as error:
        why = error.strerror if isinstance(error, OSError) and error.strerror else error
        raise LstmMusicError(f"cannot read {path}: {why}; is {run_dir} a training run?") from error


def run_corpus(run_dir: Path | None) -> Path | None:
    """The corpus folder a run's config.json names, or None (no run, no record)."""
    if run_dir is None:
        return None
    try:
        recorded = _load_config(run_dir / CONFIG_FILE).get("corpus")
    except (OSError, ValueError):
        return None
    return Path(recorded) if isinstance(recorded, str) and recorded else None


def read_metrics_rows(path: Path) -> list[dict[str, str]]:
    """metrics.csv's rows as written; none for a file that is missing, not a regular file (a
    named pipe would block) or unreadable: the log is optional to its readers."""
    if not is_regular_file(path):
        return []
    try:
        with open(path, newline="") as file:
            return list(csv.DictReader(file))
    except (OSError, csv.Error, UnicodeDecodeError):
        return []


@dataclass(frozen=True)
class MetricsLog:
    """What a run's metrics.csv says: how far (its last row), how long, how good."""

    steps: int | None = None
    epochs: int | None = None  # only when the last row's epoch is a whole number as written
    seconds: float | None = None  # the last finite training time logged
    best_valid_loss: float | None = None
    last_valid_loss: float | None = None
    last_train_loss: float | None = None


def read_metrics_log(path: Path) -> MetricsLog:
    """The figures of metrics.csv at `path`; all None when it holds none."""
    rows = read_metrics_rows(path)
    if not rows:
        return MetricsLog()

    def column(name: str) -> list[float]:
        values = []
        for row in rows:
            try:
                values.append(float(row.get(name) or "nan"))
            except (TypeError, ValueError):
                continue
        return [v for v in values if math.isfinite(v)]

    def whole(name: str) -> int | None:
        value = rows[-1].get(name) or ""
        return int(value) if isinstance(value, str) and value.isdigit() else None

    valid, train, seconds = column("valid_loss"), column("train_loss"), column("seconds")
    return MetricsLog(
        steps=whole("step"),
        epochs=whole("epoch"),
        seconds=seconds[-1] if seconds else None,
        best_valid_loss=min(valid) if valid else None,
        last_valid_loss=valid[-1] if valid else None,
        last_train_loss=train[-1] if train else None,
    )


def _timed(tokenizer_config: dict[str, Any]) -> bool:
    """From the tokenizer's class: building the tokenizer for every file listed would be slow
    (MidiTok builds its vocabulary), and its name was checked with the header."""
    from lstm_music.tokens import TokenizerError, tokenizer_class

    try:
        return bool(tokenizer_class(str(tokenizer_config.get("tokenizer"))).timed)
    except TokenizerError:  # an unknown tokenizer: refused by the header's check anyway
        return False


def listing_header(path: Path) -> dict[str, Any]:
    """A checkpoint as listings show it, from its header alone (checked as loading checks it:
    a `CheckpointError` for a file that is not one): our JSON metadata, the parameter count,
    and what it can be asked: whether `seconds` sets the length, the controls it was trained
    with, whether its tokens name instruments (Program_ tokens)."""
    from lstm_music.model.header import read_checkpoint_header
    from lstm_music.tokens import understood_controls

    header = read_checkpoint_header(path)
    found = {**(header.meta or {}), "parameters": header.parameters}
    tokenizer = found.get("tokenizer", {})
    vocabulary = found.get("vocabulary", [])
    found.update(
        timed=_timed(tokenizer),
        controls=list(understood_controls(tokenizer)),
        instruments=any(isinstance(t, str) and t.startswith("Program_") for t in vocabulary),
    )
    return found


def finite(value: Any) -> float | None:
    """A figure for JSON: a NaN or infinite loss (a diverged run) is shown as none."""
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


@dataclass(frozen=True)
class RunSummary:
    """One run folder as a listing shows it; `damaged` says why it cannot be used (None: fine)."""

    name: str  # the folder below the listed one, odd characters escaped (safe to print)
    path: Path
    updated: datetime | None = None  # when a run file was last written, in local time
    tokenizer: str | None = None
    parameters: int | None = None
    embedding: int | None = None
    hidden_sizes: tuple[int, ...] = ()
    vocabulary: int | None = None
    steps: int | None = None
    best_valid_loss: float | None = None  # nats per token on the valid split
    seconds: float | None = None  # training time
    preset: str | None = None
    init: str | None = None  # the model it was fine-tuned from
    corpus: str | None = None
    controls: tuple[str, ...] = ()
    instruments: bool = False
    damaged: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """For JSON: the path as text, the time in ISO 8601 (with its UTC offset), lists."""
        found = asdict(self)
        when = self.updated
        found.update(
            path=str(self.path),
            updated=None if when is None else when.isoformat(timespec="seconds"),
            hidden_sizes=list(self.hidden_sizes),
            controls=list(self.controls),
        )
        return found


def _printable(text: str) -> str:
    """`text` with what a terminal would act on (newlines, escapes) or cannot show (bytes that
    are no UTF-8) written as Python escapes: a folder's name cannot forge a listing's lines."""
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _updated(run_dir: Path) -> datetime | None:
    """When the run last wrote one of its files (None for none, or a time no calendar holds:
    a file's time can be set to anything)."""
    times = []
    for name in RUN_FILES:
        try:
            times.append((run_dir / name).stat().st_mtime)
        except OSError:
            continue
    try:
        return datetime.fromtimestamp(max(times)).astimezone() if times else None
    except (OverflowError, OSError, ValueError):
        return None


def _config_part(run_dir: Path, problems: list[str]) -> dict[str, Any]:
    """What config.json records (nothing when there is none: a copied run's files)."""
    path = run_dir / CONFIG_FILE
    if not os.path.lexists(path):
        return {}
    try:
        config = _load_config(path)
    except (OSError, ValueError) as error:
        problems.append(f"{CONFIG_FILE}: {getattr(error, 'strerror', None) or error}")
        return {}
    train = config.get("train") if isinstance(config.get("train"), dict) else {}
    return {"preset": _text(train.get("preset")), "init": _text(train.get("init")),
            "corpus": _text(config.get("corpus"))}  # fmt: skip


def _checkpoint_part(run_dir: Path, problems: list[str]) -> dict[str, Any]:
    """What the run's checkpoint says of the model, and the figures it recorded."""
    path = run_checkpoint(run_dir)
    if path is None:
        problems.append(f"no {BEST_CHECKPOINT} or {LAST_CHECKPOINT}: nothing saved yet")
        return {}
    try:
        header = listing_header(path)
    except (LstmMusicError, OSError, ValueError) as error:
        problems.append(f"{path.name}: {getattr(error, 'reason', None) or error}")
        return {}
    model, metrics = header.get("model_config", {}), header.get("metrics", {})
    step = finite(metrics.get("step"))
    return {
        "tokenizer": header["tokenizer"]["tokenizer"],
        "parameters": int(header["parameters"]),
        "embedding": model.get("embedding_dim"),
        "hidden_sizes": tuple(model.get("hidden_sizes", ())),
        "vocabulary": len(header.get("vocabulary", [])),
        "steps": None if step is None else int(step),
        "best_valid_loss": finite(metrics.get("best_valid_loss")),
        "seconds": finite(metrics.get("seconds")),
        "controls": tuple(header["controls"]),
        "instruments": bool(header["instruments"]),
    }


def summarise_run(run_dir: Path, name: str) -> RunSummary:
    """The summary of one run folder; never raises for what the folder holds. The figures of
    metrics.csv (the whole run's log) come before those the checkpoint recorded when saved."""
    problems: list[str] = []
    found = {**_config_part(run_dir, problems), **_checkpoint_part(run_dir, problems)}
    log = read_metrics_log(run_dir / METRICS_FILE)
    logged = {"steps": log.steps, "best_valid_loss": log.best_valid_loss, "seconds": log.seconds}
    found.update({key: value for key, value in logged.items() if value is not None})
    damaged = "; ".join(_printable(problem) for problem in problems) or None
    return RunSummary(_printable(name), run_dir, _updated(run_dir), damaged=damaged, **found)


def _run_name(root: Path, folder: Path) -> str:
    relative = folder.relative_to(root).as_posix()
    return (root.resolve().name or str(root)) if relative == "." else relative


def list_runs(root: str | Path) -> list[RunSummary]:
    """Every run folder under `root` (itself included; at most MAX_RUNS), the most recently
    written first: what was trained, how far, how good, and which folders are damaged, why."""
    root = Path(root)
    if not root.is_dir():
        raise LstmMusicError(f"{root} is not a folder" if root.exists() else f"no folder {root}")
    folders = [folder for folder, files in walk_folders(root) if set(RUN_MARKERS) & set(files)]
    if not folders:
        raise LstmMusicError(
            f"no training runs in {root}: a run is a folder that train wrote ({CONFIG_FILE}, "
            f"{METRICS_FILE}, {BEST_CHECKPOINT}...)"
        )
    runs = [summarise_run(folder, _run_name(root, folder)) for folder in folders[:MAX_RUNS]]
    never = datetime.min.replace(tzinfo=timezone.utc)
    by_name = sorted(runs, key=lambda run: run.name)
    return sorted(by_name, key=lambda run: run.updated or never, reverse=True)  # stable
