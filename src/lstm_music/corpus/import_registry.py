"""Openly licensed score collections that `lstm-music corpus import NAME PATH` converts.

Each is a public repository the user clones; the import reads that clone, never the network.
Licences were checked per repository and are checked again per file where the files state one
(Humdrum `!!!YEM` records, MusicXML `<rights>`): a file whose own statement is not an open
licence the source allows is left out and listed with the reason. Not offered (non-commercial,
no licence, or copies of copyrighted songs): Lakh, ADL, VGMIDI, EMOPIA, ASAP, Aria-MIDI,
DCMLab, craigsapp's NC editions, KernScores' reserved editions. MutopiaProject states a licence
per piece in its LilyPond header: public domain and CC BY pieces are imported, CC BY-SA ones left
out (whether share-alike terms reach a model trained on the music is unsettled, and the shipped
models must carry no such terms), as are pieces that state none.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lstm_music.errors import LstmMusicError

IMPORT_FORMAT = 1  # bump when the conversion changes, so old imports are rebuilt
FILE_BYTES = 20 * 1024 * 1024  # a score file (or a .mxl's score inside) larger is left out
STATEMENTS = " | "  # joins a file's several licence statements
HEADER_BYTES = 256 * 1024  # the part of a file read for its licence, composer and title


@dataclass(frozen=True)
class ImportSource:
    """One collection: where to get it, which files are scores, and what may be used."""

    name: str
    title: str
    clone: str  # the `git clone` address
    pattern: str  # glob, relative to the clone, of the score files
    score_format: str  # "humdrum", "musicxml" or "lilypond"
    licence: str  # the repository's licence
    licence_pattern: str  # regex a file's own licence statement must match (case-insensitive)
    credit: str  # the attribution the licence asks for (CC BY), or a courtesy line (CC0)
    approx_files: int
    what: str
    # what a file that states no instruments is for; with `part_in_name`, a file named
    # ...-PART.krn with a PART of letters (`-violoncello`) is that instrument's part instead
    instruments: str = ""
    part_in_name: bool = False
    licence_required: bool = False  # a file that states no licence is left out (no repo licence)


CC_BY = r"\bCC[- ]?BY[- ]4\.0\b"
# public domain, or Creative Commons Attribution without share-alike (any version)
PD_OR_CC_BY = (r"^\s*public domain\s*$|^\s*creative commons attribution \d(\.\d)?"
               r"( international)?\s*$|^\s*cc[- ]by( \d(\.\d)?)?\s*$")  # fmt: skip
SOURCES: tuple[ImportSource, ...] = (
    ImportSource(
        "openscore-lieder", "OpenScore Lieder Corpus", "https://github.com/OpenScore/Lieder",
        "scores/**/*.mxl", "musicxml", "CC0 1.0", r"\bCC0\b|public domain",
        "OpenScore Lieder Corpus (CC0), https://github.com/OpenScore/Lieder",
        1460, "songs for voice and piano, 19th century",
    ),
    ImportSource(
        "openscore-quartets", "OpenScore String Quartets",
        "https://github.com/OpenScore/StringQuartets", "scores/**/*.mxl", "musicxml", "CC0 1.0",
        r"\bCC0\b|public domain",
        "OpenScore String Quartets (CC0), https://github.com/OpenScore/StringQuartets",
        120, "string quartets, 18th-20th century",
    ),
    ImportSource(
        "polish-scores", "Polish Heritage in Open Access",
        "https://github.com/pl-wnifc/humdrum-polish-scores", "**/*.krn", "humdrum", "CC BY 4.0",
        CC_BY,
        "Polish Heritage in Open Access, (c) Narodowy Instytut Fryderyka Chopina, CC BY 4.0 "
        "(https://creativecommons.org/licenses/by/4.0/), https://polishscores.org",
        8150, "Polish music of the 19th century: piano, songs, chamber, choral",
    ),
    ImportSource(
        "chopin-first-editions", "Chopin first editions",
        "https://github.com/pl-wnifc/humdrum-chopin-first-editions", "kern/*.krn", "humdrum",
        "CC BY 4.0", CC_BY,
        "Chopin first editions, (c) Narodowy Instytut Fryderyka Chopina, CC BY 4.0 "
        "(https://creativecommons.org/licenses/by/4.0/), https://chopinscores.org",
        510, "Chopin's works as first printed (one edition per work kept)", "piano", True,
    ),
    ImportSource(
        "mutopia", "The Mutopia Project", "https://github.com/MutopiaProject/MutopiaProject",
        "ftp/**/*.ly", "lilypond", "per piece: public domain or CC BY (CC BY-SA left out)",
        PD_OR_CC_BY,
        "Music typeset by the volunteers of the Mutopia Project (https://www.mutopiaproject.org); "
        "each piece's licence and typesetter below",
        2100, "classical scores typeset in LilyPond: piano, organ, guitar, voices, chamber",
        licence_required=True,
    ),
)  # fmt: skip


def get_source(name: str) -> ImportSource:
    for source in SOURCES:
        if source.name == name:
            return source
    known = ", ".join(s.name for s in SOURCES)
    raise LstmMusicError(f"no importable collection {name!r}; choose one of: {known}")


def licence_allowed(source: ImportSource, stated: str) -> bool:
    """Whether a file may be used: no statement of its own (the repository's licence holds),
    or statements (joined by STATEMENTS) that each name a licence the source allows: a file
    that also names another holder is left out."""
    parts = [part for part in stated.split(STATEMENTS) if part.strip()]
    return all(re.search(source.licence_pattern, p, re.IGNORECASE) for p in parts)


__all__ = [
    "FILE_BYTES",
    "HEADER_BYTES",
    "IMPORT_FORMAT",
    "SOURCES",
    "STATEMENTS",
    "ImportSource",
    "get_source",
    "licence_allowed",
]
