"""Built-in public-domain corpora: scores that ship with music21, converted to MIDI once.

music21 (the optional extra `lstm-music[corpora]`) bundles MusicXML and ABC encodings of
public-domain music. A collection is converted once, in parallel worker processes, into the
user's cache folder; from then on it is a plain MIDI folder that `prepare` reads like any other,
and music21 is not needed again. music21 is imported only inside the conversion, never on the
main path. Essen (non-commercial only) and other restricted collections are not offered.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
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
    from lstm_music.corpus.builtin_convert import convert, list_pieces, music21_corpus

    corpus_dir = music21_corpus()
    pieces = list_pieces(collection, corpus_dir)[:limit]
    final.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    try:
        source = convert(collection, corpus_dir, pieces, temporary, workers, progress)
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
    from lstm_music.fsutil import swap_in

    try:
        swap_in(temporary, final)
    except OSError as error:  # another process published between our check and our rename
        if read_source(final) is None:
            raise LstmMusicError(f"cannot move the conversion into {final}: {error}") from error


__all__ = [
    "COLLECTIONS",
    "Collection",
    "builtin_folder",
    "cache_folder",
    "cache_root",
    "get_collection",
    "read_source",
]
