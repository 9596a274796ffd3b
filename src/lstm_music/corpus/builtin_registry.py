"""The built-in collections we may use, and the conversion's fixed settings.

A module of its own so that `builtin` (the cache and its folders) and `builtin_convert` (the
music21 side) both read it and neither imports the other at the top: `builtin` calls into
`builtin_convert` only when a collection is converted.
"""

from __future__ import annotations

from dataclasses import dataclass

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
    files: tuple[str, ...] = ()  # only these files of the folder (ABC); empty: every one
    # ABC tune names: "file" (file stem and index) or "number" (X: number and title; a number
    # seen before is a second transcription of the same tune and is left out)
    naming: str = "file"


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
        naming="number",
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
    Collection(
        name="airds-airs",
        title="Aird's Airs (Scotch, English, Irish and foreign airs)",
        description="James Aird's six volumes of airs, marches, reels and dances for fife, "
        "violin or flute (ABC), one melody track per tune, numbered as in the collection.",
        folder="airdsAirs",
        kind="abc",
        composer="James Aird (ed.), Glasgow, from 1778",
        licence="public domain (ABC by permission)",
        provenance="A Selection of Scotch, English, Irish and Foreign Airs adapted to the Fife, "
        "Violin, or German-Flute, printed and sold by James Aird, Glasgow, six volumes (the "
        "first dated 1778, often cited as 1782), public domain. Transcribed to ABC by Jack "
        "Campin (each tune's Z: field: 'Jack Campin * www.campin.me.uk * 2009'); the files "
        "carry no licence or restriction. Distributed with music21 with the permission of the "
        "encoders (music21/corpus/license.txt).",
        approx_pieces=1180,
        naming="number",
    ),
    Collection(
        name="northumbrian-minstrelsy",
        title="Northumbrian Minstrelsy (Bruce and Stokoe, 1882)",
        description="Song and dance tunes of Northumberland (ABC), one melody track per tune, "
        "numbered as in the file.",
        folder="miscFolk",
        kind="abc",
        composer="J.C. Bruce and J. Stokoe (eds.), Newcastle 1882",
        licence="public domain (ABC by permission)",
        provenance="Northumbrian Minstrelsy, edited by John Collingwood Bruce and John Stokoe "
        "(Newcastle upon Tyne: Society of Antiquaries, 1882), public domain. Transcribed to "
        "ABC by Jack Campin (v 1.0, May 2007; each tune's Z: field names him); the file "
        "carries no licence or restriction. Distributed with music21 with the permission of "
        "the encoders (music21/corpus/license.txt). The folder's other file (American fife "
        "tunes) is not used: its original encoder is unknown.",
        approx_pieces=129,
        files=("northumbrianminstrelsyopus.abc",),
        naming="number",
    ),
)


ALL = "all"  # every collection, for resolve_names


def get_collection(name: str) -> Collection:
    """The registry entry called `name`, or an error that lists the names."""
    for collection in COLLECTIONS:
        if collection.name == name:
            return collection
    names = ", ".join(c.name for c in COLLECTIONS)
    raise LstmMusicError(f"no built-in collection {name!r}; choose one of: {names}")


def resolve_names(spec: str) -> list[str]:
    """Collection names from "a,b,c" (each once, in that order) or "all" (every one)."""
    parts = [part.strip() for part in spec.split(",") if part.strip()]
    if not parts:
        raise LstmMusicError("name a built-in collection (or all)")
    named = [get_collection(part).name for part in parts if part != ALL]  # typos are refused
    if ALL in parts:
        return [collection.name for collection in COLLECTIONS]
    return list(dict.fromkeys(named))
