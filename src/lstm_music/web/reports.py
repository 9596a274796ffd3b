"""A run's held-out report for the page: `evaluation.report`, on the corpus the run names.

A run folder's config.json records the corpus it was trained on; the report is computed on it
by the library (seconds: scoring, a few sampled pieces, the copy check) once per version of the
checkpoint and of the corpus, then kept. Nothing here imports FastAPI; errors are
`LstmMusicError`s whose messages name no server path (the route answers them with 422).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lstm_music.errors import LstmMusicError
from lstm_music.web.catalog import ModelEntry, run_corpus

if TYPE_CHECKING:
    from lstm_music.web.jobs import CheckpointCache

KEPT = 16  # reports kept (each a few kilobytes)


def _version(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return -1


class ReportCache:
    """Reports by (checkpoint, corpus) version; computing one is left to the caller's thread."""

    def __init__(self, size: int = KEPT) -> None:
        self.size = size
        self._items: OrderedDict[tuple, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, entry: ModelEntry, checkpoints: CheckpointCache) -> dict[str, Any]:
        """The report of `entry` (a run) as JSON; computed when not kept. Runs in a worker."""
        corpus_path = run_corpus(entry.run_dir)
        if corpus_path is None:
            raise LstmMusicError(
                f"model {entry.id!r} has no report: its folder does not record the corpus it "
                "was trained on (config.json)"
            )
        key = (entry.path, _version(entry.path), corpus_path, _version(corpus_path / "corpus.json"))
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        report = self._compute(entry, corpus_path, checkpoints)
        with self._lock:
            self._items[key] = report
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return report

    @staticmethod
    def _compute(entry: ModelEntry, corpus_path: Path, checkpoints) -> dict[str, Any]:
        from lstm_music.corpus.store import Corpus
        from lstm_music.evaluation.report import COPY_PIECES, held_out_report
        from lstm_music.model.checkpoint import base_of

        checkpoint = checkpoints.get(entry.path)
        try:
            corpus = Corpus.load(corpus_path)
            report = held_out_report(
                checkpoint, corpus, base=base_of(checkpoint), copy_pieces=COPY_PIECES
            )
        except LstmMusicError as error:  # say what went wrong, not where the server keeps it
            text = str(error).replace(str(corpus_path), "the run's corpus")
            raise LstmMusicError(f"model {entry.id!r}: no report: {text}") from error
        return report.to_dict()
