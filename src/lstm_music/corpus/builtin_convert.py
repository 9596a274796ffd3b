"""The music21 side of the built-in corpora: list a collection's scores, convert them to MIDI.

Imported only when a collection is converted (`builtin.builtin_folder`), so music21 stays off
the main path; the conversion runs in isolated worker processes, one score per job.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lstm_music.corpus.builtin_registry import (
    FORMAT,
    INSTALL_HINT,
    PIECE_MEMORY_MB,
    PIECE_TIMEOUT,
    REPEAT_SECONDS,
    VOICES,
    Collection,
)
from lstm_music.errors import LstmMusicError


def music21_corpus() -> Path:
    """music21's bundled corpus folder; imports music21 (only the conversion needs it)."""
    try:
        import music21
    except ImportError:
        raise LstmMusicError(
            f"the built-in corpora are converted with music21, which is not installed: "
            f"{INSTALL_HINT}"
        ) from None
    corpus = Path(music21.__file__).parent / "corpus"
    if not (corpus / "bach").is_dir():
        raise LstmMusicError(f"music21 is installed without its corpus ({corpus}); {INSTALL_HINT}")
    return corpus


@dataclass(frozen=True)
class SourceScore:
    """One score to convert: the MIDI file `name`, from `source` (tune `text` for ABC)."""

    name: str
    source: str  # relative to music21's corpus folder
    text: str | None = None


def list_pieces(collection: Collection, corpus_dir: Path) -> list[SourceScore]:
    """Every piece of the collection, in a stable order, with unique file names."""
    folder = corpus_dir / collection.folder
    if collection.kind == "chorales":
        found = [
            SourceScore(_slug(path.stem, keep="."), f"{collection.folder}/{path.name}")
            for path in sorted(folder.iterdir())
            if path.suffix in (".mxl", ".xml")  # the .krn files duplicate .mxl ones
        ]
    else:
        found = _abc_pieces(folder, collection)
    seen: dict[str, int] = {}
    unique = []
    for piece in found:
        seen[piece.name] = seen.get(piece.name, 0) + 1
        suffix = f"-{seen[piece.name]}" if seen[piece.name] > 1 else ""
        unique.append(SourceScore(piece.name + suffix, piece.source, piece.text))
    return unique


def _abc_pieces(folder: Path, collection: Collection) -> list[SourceScore]:
    """Tunes of the collection's .abc files, named by tune number or by file (see `naming`)."""
    pieces, numbers = [], set()
    prefix = collection.name.split("-")[0]
    paths = [folder / name for name in collection.files] or sorted(folder.glob("*.abc"))
    for path in paths:
        text = path.read_text(encoding="utf-8", errors="replace")
        tunes = re.split(r"(?m)^(?=X:)", text)[1:]  # any file header before X: is blank
        for index, tune in enumerate(tunes):
            number = re.match(r"X:\s*(\d+)", tune)
            title = re.search(r"(?m)^T:\s*(.*)$", tune)
            if collection.naming == "number" and number:
                if int(number.group(1)) in numbers:
                    continue  # a second transcription of the same tune
                numbers.add(int(number.group(1)))
                name = f"{prefix}-{int(number.group(1)):04d}-"
                name += _slug(title.group(1) if title else "untitled")
            else:
                stem = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "-", path.stem)
                name = f"{prefix}-{_slug(stem)}" + (f"-{index + 1}" if len(tunes) > 1 else "")
            pieces.append(SourceScore(name, f"{collection.folder}/{path.name}#{index + 1}", tune))
    return pieces


def _slug(text: str, keep: str = "") -> str:
    """A readable, portable file name: ASCII letters, digits and dashes (and `keep`)."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(rf"[^a-z0-9{re.escape(keep)}]+", "-", ascii_text.lower()).strip("-.")
    return slug[:60].rstrip("-.") or "untitled"


class ConvertJob:
    """Runs in a worker: one SourceScore -> `out/<name>.mid`, or a reason it is skipped."""

    def __init__(self, corpus_dir: str, out: str, kind: str) -> None:
        self.corpus_dir, self.out, self.kind = corpus_dir, out, kind

    def __call__(self, piece: SourceScore) -> dict[str, Any]:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if self.kind == "chorales":
                score, skip = _chorale_score(Path(self.corpus_dir) / piece.source)
            else:
                score, skip = _abc_score(piece.text or ""), ""
            if skip:
                return {"status": "skipped", "reason": skip}
            notes = _write_midi(score, Path(self.out) / f"{piece.name}.mid")
        if notes == 0:
            (Path(self.out) / f"{piece.name}.mid").unlink()
            return {"status": "skipped", "reason": "no notes"}
        return {"status": "ok", "notes": notes}


def _chorale_score(path: Path):  # -> (music21 Score, skip reason)
    """The chorale with only its four voices; a skip reason if it lacks exactly those four."""
    from music21 import converter

    score = converter.parse(path, forceSource=True)
    parts = list(score.parts)
    names = [re.split(r"\s", (p.partName or p.id or "").strip() or "?")[0] for p in parts]
    if sorted(names.count(voice) for voice in VOICES) != [1, 1, 1, 1]:
        return None, f"not four voices S, A, T, B (parts: {', '.join(names) or 'none'})"
    for part, name in zip(parts, names):
        if name in VOICES:  # "Soprano\rOboe 1,2\rViolin1" -> "Soprano", the MIDI track name
            for instrument in part.recurse().getElementsByClass("Instrument"):
                instrument.partName = name
        else:
            score.remove(part)
    return score, ""


def _abc_score(text: str):  # -> music21 Score
    """The tune's score without note-less parts: music21 reads a `V:2 merge` voice (two of
    Aird's tunes) into the notes of V:1 and leaves empty parts, which MIDI export rejects."""
    from music21 import converter

    score = converter.parseData(text, format="abc", forceSource=True)
    for part in list(score.parts):
        if not part.recurse().notes and len(score.parts) > 1:
            score.remove(part)
    return score


def _write_midi(score, path: Path) -> int:
    """Write `score` as MIDI; the number of notes written.

    music21 expands repeats when writing MIDI; where they are badly formed, or so tangled that
    expanding takes minutes (a few ABC tunes), the tune is written straight through instead.
    """
    from music21 import repeat

    _unshare_signatures(score)
    try:
        with _time_limit(REPEAT_SECONDS):
            score.write("midi", fp=path)
    except (repeat.ExpanderException, _TooSlow):
        _strip_repeats(score)
        score.write("midi", fp=path)
    import symusic

    return symusic.Score(str(path)).note_num()


class _TooSlow(Exception):
    """The time limit of `_time_limit` ran out."""


@contextlib.contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    """Raise _TooSlow after `seconds` (via SIGALRM: main thread on POSIX; else no limit)."""
    import signal

    if threading.current_thread() is not threading.main_thread() or os.name != "posix":
        yield
        return

    def expire(signum, frame) -> None:
        raise _TooSlow

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _unshare_signatures(score) -> None:
    """music21's ABC reader may put one TimeSignature object in two measures; MIDI export
    then fails ("already found in this Stream"), so each later occurrence gets a copy."""
    import copy

    seen: set[int] = set()
    classes = ("TimeSignature", "KeySignature", "MetronomeMark")
    for stream in score.recurse(streamsOnly=True, includeSelf=True):
        for element in list(stream.getElementsByClass(classes)):
            if id(element) in seen:
                stream.replace(element, copy.deepcopy(element))
            seen.add(id(element))


def _strip_repeats(score) -> None:
    """Play the music straight through: repeat barlines, brackets and signs removed."""
    from music21 import bar, repeat, spanner, stream

    for measure in score.recurse().getElementsByClass(stream.Measure):
        if isinstance(measure.leftBarline, bar.Repeat):
            measure.leftBarline = None
        if isinstance(measure.rightBarline, bar.Repeat):
            measure.rightBarline = bar.Barline("regular")
    for kind in (repeat.RepeatExpression, spanner.RepeatBracket):
        for element in list(score.recurse().getElementsByClass(kind)):
            element.activeSite.remove(element)


def convert(
    collection: Collection,
    corpus_dir: Path,
    pieces: list[SourceScore],
    out: Path,
    workers: int | None,
    progress: bool,
) -> dict[str, Any]:
    """Convert `pieces` into `out` in isolated workers; the source.json record."""
    import music21
    from tqdm import tqdm

    from lstm_music.corpus.workers import IsolatedPool

    started = time.perf_counter()
    job = ConvertJob(str(corpus_dir), str(out), collection.kind)
    size = min(len(pieces), workers or os.cpu_count() or 1)
    pool = IsolatedPool(job, size, PIECE_TIMEOUT, PIECE_MEMORY_MB)
    by_name = {piece.name: piece for piece in pieces}
    converted, skipped, failures = 0, [], []
    with tqdm(total=len(pieces), unit="piece", desc=collection.name, disable=not progress) as bar:
        for outcome in pool.imap_unordered((p.name, p) for p in pieces):
            result = outcome.result if outcome.ok else {"status": "failed"}
            entry = {"piece": outcome.key, "source": by_name[outcome.key].source}
            if result["status"] == "ok":
                converted += 1
            elif result["status"] == "skipped":
                skipped.append({**entry, "reason": result["reason"]})
            else:
                failures.append({**entry, "reason": outcome.reason})
            bar.update(1)
    if converted == 0:
        first = (failures or skipped or [{"reason": "no pieces"}])[0]["reason"]
        raise LstmMusicError(f"{collection.name}: no piece converted (first problem: {first})")
    return {
        "format": FORMAT,
        "collection": collection.name,
        "title": collection.title,
        "music21_version": music21.__version__,
        "count": converted,
        "attempted": len(pieces),
        "skipped": sorted(skipped, key=lambda e: e["piece"]),
        "failures": sorted(failures, key=lambda e: e["piece"]),
        "licence": collection.licence,
        "provenance": collection.provenance,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "seconds": round(time.perf_counter() - started, 1),
    }
