"""The models the server offers: every checkpoint found under --runs, then the shipped ones.

Clients name a model only by the id the server assigned here; the path behind it never leaves or
enters through the API. Listing reads safetensors headers only (cached by file size and time),
so rescanning on every listing stays cheap and picks up runs trained while the server is up.
"""

from __future__ import annotations

import math
import re
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from lstm_music.errors import LstmMusicError
from lstm_music.model.runs import (
    BEST_CHECKPOINT,
    LAST_CHECKPOINT,
    LOSS_PLOT,
    METRICS_FILE,
    find_checkpoints,
    finite,
    listing_header,
    read_metrics_log,
    run_corpus,
)
from lstm_music.web.markdown import markdown_to_html

TRAIN_KEYS = ("preset", "dropout", "window", "batch_size", "optimizer", "lr", "transpose")


@dataclass(frozen=True)
class ModelEntry:
    """One model: its id for clients, and (server side only) where its files are."""

    id: str
    label: str
    source: str  # "shipped" or "run"
    path: Path  # the checkpoint
    card: Path | None = None  # a shipped model's card
    run_dir: Path | None = None  # a run's folder (metrics.csv, config.json, loss.png)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")[:80] or "model"


def _run_label(root: Path, checkpoint: Path) -> str:
    relative = checkpoint.relative_to(root)
    if checkpoint.name in (BEST_CHECKPOINT, LAST_CHECKPOINT):
        folder = relative.parent.as_posix()
        return root.resolve().name if folder == "." else folder
    return relative.with_suffix("").as_posix()


def human_duration(seconds: float) -> str:
    """17 s, 4 min 05 s, 2 h 03 min: training times as people say them."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def default_sampling(header: dict[str, Any]) -> dict[str, Any]:
    """The temperature and top-p a model samples at when a request gives none: the choice its
    checkpoint records (checked by `recorded_sampling`, as loading checks it), else the
    library's defaults, with who chose them."""
    from lstm_music.generation.sampling import (
        DEFAULT_TEMPERATURE,
        DEFAULT_TOP_P,
        recorded_sampling,
    )

    recorded = recorded_sampling(header.get("sampling"))
    if not recorded:
        return {"temperature": DEFAULT_TEMPERATURE, "top_p": DEFAULT_TOP_P, "chosen_by": "default"}
    chosen_by = recorded.get("chosen_by") or "recorded in the checkpoint"
    return {"temperature": recorded["temperature"], "top_p": recorded["top_p"],
            "chosen_by": chosen_by}  # fmt: skip


def _modified(path: Path) -> int:
    """When a checkpoint was last written (ns), 0 when it cannot be read."""
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0


def _listing_order(entry: ModelEntry) -> tuple[bool, int]:
    """The user's runs first, the newest checkpoint first (the page opens on the first one: the
    run just trained, whose held-out figures need not compare with others', trained on other
    corpora); then the shipped models in their own order (sorting is stable)."""
    if entry.source != "run":
        return True, 0
    return False, -_modified(entry.path)


class Catalog:
    """The current list of models, rescanned on `refresh`; safe to use from several threads."""

    def __init__(self, runs: Path | None) -> None:
        self.runs = runs
        self._lock = threading.Lock()
        self._entries: dict[str, ModelEntry] = {}
        # path -> (size, mtime, header): one slot per file, refreshed when the file changes
        self._headers: dict[Path, tuple[tuple[int, int], dict[str, Any] | None]] = {}

    def header(self, path: Path) -> dict[str, Any] | None:
        """`listing_header`, cached until the file changes; None for a file that is not a
        checkpoint (damaged, crafted, foreign: not offered)."""
        try:
            stat = path.stat()
        except OSError:
            return None
        version = (stat.st_size, stat.st_mtime_ns)
        with self._lock:
            cached = self._headers.get(path)
        if cached is not None and cached[0] == version:
            return cached[1]
        from lstm_music.model.header import CheckpointError  # imports torch: when first asked

        try:
            header: dict[str, Any] | None = listing_header(path)
        except CheckpointError:
            header = None
        with self._lock:
            self._headers[path] = (version, header)
        return header

    def refresh(self) -> list[ModelEntry]:
        from lstm_music.model.shipped import shipped_models

        entries = [
            ModelEntry(model.name, model.name, "shipped", model.path, card=model.card)
            for model in shipped_models()
        ]
        if self.runs is not None and self.runs.is_dir():
            for path in find_checkpoints(self.runs):
                label = _run_label(self.runs, path)
                entries.append(ModelEntry(_slug(label), label, "run", path, run_dir=path.parent))
        unique: dict[str, ModelEntry] = {}
        for entry in entries:
            if self.header(entry.path) is None:
                continue
            model_id, n = entry.id, 1
            while model_id in unique:
                n += 1
                model_id = f"{entry.id}-{n}"
            unique[model_id] = replace(entry, id=model_id)
        # shipped models keep their names (above); the user's runs come first, newest first
        ordered = sorted(unique.values(), key=_listing_order)
        with self._lock:
            self._entries = {entry.id: entry for entry in ordered}
        return ordered

    def get(self, model_id: str) -> ModelEntry | None:
        """The model called `model_id`, rescanning once if it is not known (yet)."""
        with self._lock:
            entry = self._entries.get(model_id)
        if entry is None:
            entry = {e.id: e for e in self.refresh()}.get(model_id)
        return entry

    def summary(self, entry: ModelEntry) -> dict[str, Any]:
        from lstm_music.model.shipped import DEFAULT_MODEL, card_figures, card_summary

        header = self.header(entry.path) or {}
        metrics = header.get("metrics", {})
        train = header.get("train_config", {})
        figures = card_figures(entry.card)  # a shipped card's held-out table, per split
        if entry.source == "shipped":
            text = card_summary(entry.card)
        else:
            steps = metrics.get("step")
            text = f"{train.get('preset', 'custom')} preset, LSTM {train.get('hidden_sizes')}"
            text += f", {steps} training steps" if steps is not None else ""
        return {
            "id": entry.id,
            "label": entry.label,
            "source": entry.source,
            "default": entry.source == "shipped" and entry.id == DEFAULT_MODEL,
            "tokenizer": header.get("tokenizer", {}).get("tokenizer"),
            "timed": bool(header.get("timed")),
            "controls": list(header.get("controls", [])),
            "instruments": bool(header.get("instruments")),
            "parameters": int(header.get("parameters", 0)),
            "valid_loss": finite(figures.get("valid", metrics.get("best_valid_loss"))),
            "test_loss": finite(figures.get("test", metrics.get("test_loss"))),
            "sampling": default_sampling(header),
            "summary": text,
        }

    def details(self, entry: ModelEntry) -> dict[str, Any]:
        """The summary plus the card (shipped) or the run's settings and metrics."""
        header = self.header(entry.path)
        if header is None:  # changed or removed since it was listed
            raise LstmMusicError(f"model {entry.id!r} can no longer be read: GET /api/models")
        result = self.summary(entry)
        model = header.get("model_config", {})
        settings = {
            "tokenizer": result["tokenizer"],
            "vocabulary size": len(header.get("vocabulary", [])),
            "embedding": model.get("embedding_dim"),
            "LSTM sizes": model.get("hidden_sizes"),
            "file size (MB)": round(entry.path.stat().st_size / 1e6, 2),
        }
        train = header.get("train_config", {})
        settings.update({key: train[key] for key in TRAIN_KEYS if key in train})
        metrics = header_metrics(header.get("metrics", {}))
        for split, key in (("valid", "valid_loss"), ("test", "test_loss")):
            if entry.card is not None and result[key] is not None:  # the shipped file's figures
                metrics[f"{split} loss (evaluate)"] = result[key]
        if entry.run_dir is not None:
            metrics.update(run_metrics(entry.run_dir / METRICS_FILE))
        if entry.card is not None:
            result["card_html"] = markdown_to_html(entry.card.read_text(encoding="utf-8"))
        if loss_curve_source(entry) is not None:
            result["loss_curve_url"] = f"/api/models/{entry.id}/loss.png"
        if run_corpus(entry.run_dir) is not None:
            result["report_url"] = f"/api/models/{entry.id}/report"
        return {**result, "settings": settings, "metrics": metrics}


def header_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    """The figures a checkpoint carries, named for people."""
    names = {"step": "steps", "epoch": "epochs", "best_valid_loss": "best valid loss",
             "valid_accuracy": "valid accuracy", "test_loss": "test loss"}  # fmt: skip
    found: dict[str, Any] = {}
    for key, name in names.items():
        value = metrics.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            found[name] = value
        elif isinstance(value, float) and math.isfinite(value):
            found[name] = round(value, 4)
    seconds = finite(metrics.get("seconds"))
    if seconds is not None and seconds >= 0:
        found["training time"] = human_duration(seconds)
    return found


def run_metrics(path: Path) -> dict[str, Any]:
    """What a person wants from a run's metrics.csv: how long, how far, how good."""
    log = read_metrics_log(path)
    found: dict[str, Any] = {}
    for name, value in (("steps", log.steps), ("epochs", log.epochs)):
        if value is not None:
            found[name] = value
    if log.seconds is not None:
        found["training time"] = human_duration(max(log.seconds, 0.0))
    for name, value in (("best valid loss", log.best_valid_loss),
                        ("last valid loss", log.last_valid_loss),
                        ("last train loss", log.last_train_loss)):  # fmt: skip
        if value is not None:
            found[name] = round(value, 4)
    return found


def loss_curve_source(entry: ModelEntry) -> Path | None:
    """The run's loss.png, else its metrics.csv (to draw one from), else None."""
    if entry.run_dir is None:
        return None
    for name in (LOSS_PLOT, METRICS_FILE):
        if (entry.run_dir / name).is_file():
            return entry.run_dir / name
    return None
