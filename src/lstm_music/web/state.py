"""`WebState`: what one running server owns, in a module of its own.

The app makes it when it starts and the routes read it from the request (`app.state.web`);
both import it from here, so neither imports the other's module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from lstm_music.web.catalog import Catalog
from lstm_music.web.job_queue import JobQueue
from lstm_music.web.jobs import Generator, Primer, Store, StoredPiece
from lstm_music.web.reports import ReportCache


@dataclass
class WebState:
    """What one running server owns; `app.state.web` while the app is up."""

    root: Path  # the temporary folder: pieces/, primers/, plots/
    catalog: Catalog
    queue: JobQueue
    pieces: Store[StoredPiece]
    primers: Store[Primer]
    generator: Generator
    max_upload_bytes: int
    reports: ReportCache = field(default_factory=ReportCache)  # runs' held-out reports
