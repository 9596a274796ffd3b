"""A run's held-out report for the page: `evaluation.report`, on the corpus the run names.

`train` ends by writing that very report into the run folder (report.json, by
`evaluation.report.run_report`: the folder's best checkpoint, else its last, on the corpus its
config.json records). It is served as it is while it is current: written after the checkpoint
and the corpus were last written. Otherwise (none, stale, unreadable) the report is computed
here by the library (seconds: scoring, a few sampled pieces for the copy check and the
listening test) once per version
of the checkpoint and of the corpus, then kept. Either way the answer says where it came from
(`origin`) and when it was made (`written`). Nothing here imports FastAPI; errors are
`LstmMusicError`s whose messages name no server path (the route answers them with 422).
"""

from __future__ import annotations

import json
import os
import stat
import threading
from collections import OrderedDict
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lstm_music.errors import LstmMusicError
from lstm_music.model.runs import REPORT_FILE, run_checkpoint, run_corpus
from lstm_music.web.catalog import ModelEntry

if TYPE_CHECKING:
    from lstm_music.web.jobs import CheckpointCache

KEPT = 16  # reports kept (each a few kilobytes)
MAX_SAVED = 1_000_000  # bytes: train's report.json is a few kilobytes


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
        saved = saved_report(entry, corpus_path)
        if saved is not None:
            return saved
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
        from lstm_music.evaluation.listening import LISTEN_PIECES
        from lstm_music.evaluation.report import COPY_PIECES, held_out_report
        from lstm_music.model.checkpoint import base_of

        checkpoint = checkpoints.get(entry.path)
        try:
            corpus = Corpus.load(corpus_path)
            report = held_out_report(
                checkpoint, corpus, base=base_of(checkpoint), copy_pieces=COPY_PIECES,
                listen_pieces=LISTEN_PIECES,
            )  # fmt: skip
        except LstmMusicError as error:  # say what went wrong, not where the server keeps it
            text = str(error).replace(str(corpus_path), "the run's corpus")
            raise LstmMusicError(f"model {entry.id!r}: no report: {text}") from error
        return {**report.to_dict(), "origin": "server", "written": _when(None)}


def _when(ns: int | None) -> str:
    """A time (ns since the epoch; None: now) as ISO 8601 in UTC, to the second."""
    moment = datetime.now(UTC) if ns is None else datetime.fromtimestamp(ns / 1e9, UTC)
    return moment.isoformat(timespec="seconds")


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is no figure")  # NaN, Infinity: not valid JSON for the page


def saved_report(entry: ModelEntry, corpus_path: Path) -> dict[str, Any] | None:
    """The run's report.json when it is `entry`'s and current, as the page's JSON; else None.

    Its file names neither checkpoint nor corpus, so it is taken as `entry`'s when `entry` is
    the checkpoint `run_report` reports on (the folder's best, else its last) and the file was
    written after that checkpoint and after the corpus's corpus.json; a file that is not a
    regular one, too big, not JSON or not a report is passed over (recomputed, not trusted).
    """
    from pydantic import ValidationError

    from lstm_music.evaluation.report import HeldOutReport
    from lstm_music.web.schemas import RunReport

    if entry.run_dir is None or run_checkpoint(entry.run_dir) != entry.path:
        return None
    file = entry.run_dir / REPORT_FILE
    try:
        found = os.stat(file)  # follows a link: what would be read
        if not stat.S_ISREG(found.st_mode) or found.st_size > MAX_SAVED:
            return None
        if found.st_mtime_ns < max(_version(entry.path), _version(corpus_path / "corpus.json")):
            return None  # the checkpoint or the corpus changed after the report was written
        with open(file, "rb") as stream:
            data = json.loads(stream.read(MAX_SAVED + 1), parse_constant=_refuse_constant)
        report = HeldOutReport.from_dict(data).to_dict()
        RunReport.model_validate(report)
    except (OSError, ValueError, TypeError, KeyError, AttributeError, ValidationError):
        return None
    return {**report, "origin": "training", "written": _when(found.st_mtime_ns)}
