"""Built-in public-domain corpora: scores that ship with music21, converted to MIDI once.

music21 (the optional extra `lstm-music[corpora]`) bundles MusicXML and ABC encodings of
public-domain music. A collection is converted once, in parallel worker processes, into the
user's cache folder; from then on it is a plain MIDI folder that `prepare` reads like any other,
and music21 is not needed again. music21 is imported only inside the conversion, never on the
main path. Essen (non-commercial only) and other restricted collections are not offered.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import time
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lstm_music.errors import LstmMusicError

FORMAT = 1  # bump when the conversion changes, so old caches are rebuilt
INSTALL_HINT = 'pip install "lstm-music[corpora]" (or pip install music21)'
VOICES = ("Soprano", "Alto", "Tenor", "Bass")
PIECE_TIMEOUT = 120.0  # seconds per score; the largest chorale takes about one
REPEAT_SECONDS = 20.0  # then a tune's repeats are dropped rather than expanded
PIECE_MEMORY_MB = 2048


@dataclass(frozen=True)
class Collection:
    """One collection we may use: where it lies in music21's corpus and where it comes from."""

    name: str
    title: str
    description: str
    folder: str  # inside music21/corpus
    kind: str  # "chorales" (MusicXML, four voices kept) or "abc" (one MIDI per tune)
    composer: str  # composer or compiler, with dates
    licence: str  # short, for tables
    provenance: str  # the full story, copied into source.json
    approx_pieces: int


COLLECTIONS: tuple[Collection, ...] = (
    Collection(
        name="bach-chorales",
        title="J.S. Bach, four-part chorales",
        description="Bach's chorale harmonizations (MusicXML): Soprano, Alto, Tenor and Bass "
        "as four tracks; doubling instruments are dropped, files without exactly those four "
        "voices (five-voice chorales, the C major prelude BWV 846) are skipped.",
        folder="bach",
        kind="chorales",
        composer="J.S. Bach (1685-1750)",
        licence="public domain (encodings by permission)",
        provenance="Chorale harmonizations by Johann Sebastian Bach (1685-1750), public domain. "
        "MusicXML encodings by Margaret Greentree (www.jsbchorales.net); the files' credits read "
        "'Harmonized by J.S. Bach' and 'PDF (c) 2004 Margaret Greentree' (a few 2003, three "
        "'used by permission'). Distributed with music21 with the permission of the encoders "
        "(music21/corpus/license.txt).",
        approx_pieces=407,
    ),
    Collection(
        name="oneills-1850",
        title="O'Neill's Music of Ireland (1850 melodies)",
        description="Irish airs, jigs, reels and hornpipes (ABC), one melody track per tune; "
        "where two transcriptions of a tune number exist, the first file's is used.",
        folder="oneills1850",
        kind="abc",
        composer="Francis O'Neill (ed.), Chicago 1903",
        licence="public domain (ABC by permission)",
        provenance="O'Neill's Music of Ireland, compiled by Francis O'Neill (Chicago, 1903), "
        "'1850 melodies', public domain. Transcribed to ABC by volunteers, among them Norbert "
        "Paap, Henrik Norbeck, Bob Safranek, Trish O'Neil, John Chambers, Dan G. Petersen, "
        "Michael Hogan and John B. Walsh (each tune's Z: field names its transcriber). "
        "Distributed with music21 with the permission of the encoders "
        "(music21/corpus/license.txt).",
        approx_pieces=1838,
    ),
    Collection(
        name="ryans-mammoth",
        title="Ryan's Mammoth Collection (fiddle tunes)",
        description="American, Irish and Scottish fiddle tunes (ABC): reels, hornpipes, jigs, "
        "strathspeys, clogs; one melody track per tune.",
        folder="ryansMammoth",
        kind="abc",
        composer="W.B. Ryan (ed.), Boston 1883",
        licence="public domain (ABC by permission)",
        provenance="Ryan's Mammoth Collection of fiddle tunes (Boston: Elias Howe, 1883), public "
        "domain; some tunes cite its reprint, Cole's 1000 Fiddle Tunes. Transcribed to ABC by "
        "Ray Davies and others (John B. Walsh, Bob Puckette, John Chambers; each tune's Z: "
        "field). Distributed with music21 with the permission of the encoders "
        "(music21/corpus/license.txt).",
        approx_pieces=1059,
    ),
)


def get_collection(name: str) -> Collection:
    """The registry entry called `name`, or an error that lists the names."""
    for collection in COLLECTIONS:
        if collection.name == name:
            return collection
    names = ", ".join(c.name for c in COLLECTIONS)
    raise LstmMusicError(f"no built-in collection {name!r}; choose one of: {names}")


def cache_root() -> Path:
    """$LSTM_MUSIC_CACHE, else $XDG_CACHE_HOME/lstm-music, else ~/.cache/lstm-music."""
    if os.environ.get("LSTM_MUSIC_CACHE"):
        return Path(os.environ["LSTM_MUSIC_CACHE"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / "lstm-music"
    return Path.home() / ".cache" / "lstm-music"


def cache_folder(name: str, limit: int | None = None) -> Path:
    """Where collection `name` is (or will be) converted; a slice gets its own folder."""
    get_collection(name)
    if limit is not None and limit < 1:
        raise LstmMusicError("the piece limit must be at least 1")
    return cache_root() / "corpora" / (f"{name}-first{limit}" if limit else name)


def read_source(folder: Path) -> dict[str, Any] | None:
    """The folder's source.json when it is a finished conversion of the current format."""
    try:
        source = json.loads((Path(folder) / "source.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return source if isinstance(source, dict) and source.get("format") == FORMAT else None


def builtin_folder(
    name: str, limit: int | None = None, workers: int | None = None, progress: bool = True
) -> Path:
    """The MIDI folder of collection `name`, converting it first if it is not cached yet.

    `limit` converts only the first pieces, into a folder of its own (a quick try never
    poisons the full cache). Pieces that fail are listed in source.json and the summary; the
    call fails only when nothing converts.
    """
    collection = get_collection(name)
    final = cache_folder(name, limit)
    if read_source(final) is not None:
        return final
    if final.exists() and not (final / "source.json").exists():
        raise LstmMusicError(f"{final} exists but is not a finished conversion; delete it")
    corpus_dir = _music21_corpus()
    pieces = list_pieces(collection, corpus_dir)[:limit]
    final.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    try:
        source = _convert(collection, corpus_dir, pieces, temporary, workers, progress)
        source["limit"] = limit
        text = json.dumps(source, indent=1, ensure_ascii=False)
        (temporary / "source.json").write_text(text + "\n", encoding="utf-8")
        _publish(temporary, final)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    if progress:
        print(_summary(read_source(final) or source, final), file=sys.stderr)
    return final


def _summary(source: dict[str, Any], folder: Path) -> str:
    return (
        f"{source['collection']}: {source['count']} pieces converted, "
        f"{len(source['skipped'])} skipped, {len(source['failures'])} failed "
        f"in {source['seconds']:.0f} s -> {folder}"
    )


def _publish(temporary: Path, final: Path) -> None:
    """Rename the finished folder into place; an older-format conversion is replaced."""
    if read_source(final) is not None:
        return  # another process finished first: keep its folder, drop ours
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        os.replace(final, old)
        os.replace(temporary, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(temporary, final)


def _music21_corpus() -> Path:
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
class Piece:
    """One score to convert: the MIDI file `name`, from `source` (tune `text` for ABC)."""

    name: str
    source: str  # relative to music21's corpus folder
    text: str | None = None


def list_pieces(collection: Collection, corpus_dir: Path) -> list[Piece]:
    """Every piece of the collection, in a stable order, with unique file names."""
    folder = corpus_dir / collection.folder
    if collection.kind == "chorales":
        found = [
            Piece(_slug(path.stem, keep="."), f"{collection.folder}/{path.name}")
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
        unique.append(Piece(piece.name + suffix, piece.source, piece.text))
    return unique


def _abc_pieces(folder: Path, collection: Collection) -> list[Piece]:
    """Tunes of every .abc file: O'Neill's named by tune number (each number once)."""
    pieces, numbers = [], set()
    prefix = collection.name.split("-")[0]
    for path in sorted(folder.glob("*.abc")):
        text = path.read_text(encoding="utf-8", errors="replace")
        tunes = re.split(r"(?m)^(?=X:)", text)[1:]  # any file header before X: is blank
        for index, tune in enumerate(tunes):
            number = re.match(r"X:\s*(\d+)", tune)
            title = re.search(r"(?m)^T:\s*(.*)$", tune)
            if collection.name == "oneills-1850" and number:
                if int(number.group(1)) in numbers:
                    continue  # a second transcription of the same tune
                numbers.add(int(number.group(1)))
                name = f"{prefix}-{int(number.group(1)):04d}-"
                name += _slug(title.group(1) if title else "untitled")
            else:
                stem = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "-", path.stem)
                name = f"{prefix}-{_slug(stem)}" + (f"-{index + 1}" if len(tunes) > 1 else "")
            pieces.append(Piece(name, f"{collection.folder}/{path.name}#{index + 1}", tune))
    return pieces


def _slug(text: str, keep: str = "") -> str:
    """A readable, portable file name: ASCII letters, digits and dashes (and `keep`)."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(rf"[^a-z0-9{re.escape(keep)}]+", "-", ascii_text.lower()).strip("-.")
    return slug[:60].rstrip("-.") or "untitled"


class ConvertJob:
    """Runs in a worker: one Piece -> `out/<name>.mid`, or a reason it is skipped."""

    def __init__(self, corpus_dir: str, out: str, kind: str) -> None:
        self.corpus_dir, self.out, self.kind = corpus_dir, out, kind

    def __call__(self, piece: Piece) -> dict[str, Any]:
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
    from music21 import converter

    return converter.parseData(text, format="abc", forceSource=True)


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


def _convert(
    collection: Collection,
    corpus_dir: Path,
    pieces: list[Piece],
    out: Path,
    workers: int | None,
    progress: bool,
) -> dict[str, Any]:
    """Convert `pieces` into `out` in isolated workers; the source.json record."""
    import music21
    from tqdm import tqdm

    from lstm_music.workers import IsolatedPool

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


__all__ = [
    "COLLECTIONS",
    "Collection",
    "builtin_folder",
    "cache_folder",
    "cache_root",
    "get_collection",
    "read_source",
]
