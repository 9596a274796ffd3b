"""`corpus import mutopia`: LilyPond headers, the licence per piece (public domain and CC BY in,
CC BY-SA and none out), Mutopia's header.ly pattern, and LilyPond's MIDI where it is installed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import symusic

from lstm_music.corpus.import_registry import get_source
from lstm_music.corpus.importer import import_folder, list_scores
from lstm_music.corpus.lilypond import lilypond_executable, lilypond_header

MUSIC = r"""
\score {
  \new PianoStaff <<
    \new Staff \relative c'' { \time 4/4 c4 d e f | g1 }
    \new Staff \relative c { \clef bass c2 g | c1 }
  >>
  \layout { }
  \midi { \tempo 4 = 100 }
}
"""


def ly(title: str, licence: str | None, instrument: str = "Piano", field: str = "license") -> str:
    lines = [f'mutopiatitle = "{title}"', 'mutopiacomposer = "TesterA"',
             f'mutopiainstrument = "{instrument}"', 'maintainer = "Jo Setter"']  # fmt: skip
    if licence is not None:
        lines.append(f'{field} = "{licence}"')
    return '\\version "2.18.2"\n\\header {\n' + "\n".join(lines) + "\n}\n"


@pytest.fixture
def clone(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("LSTM_MUSIC_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "clone" / "ftp" / "TesterA"

    def piece(folder: str, text: str, name: str | None = None) -> Path:
        (root / folder).mkdir(parents=True, exist_ok=True)
        path = root / folder / (name or f"{folder}.ly")
        path.write_text(text)
        return path

    piece("minuet", ly("Minuet", "Public Domain") + MUSIC)
    piece("rondo", ly("Rondo", "Creative Commons Attribution 4.0") + MUSIC)
    piece("old", ly("Old Air", "Public Domain", field="copyright") + MUSIC)  # older field name
    piece("shared", ly("Shared", "Creative Commons Attribution-ShareAlike 4.0") + MUSIC)
    piece("silent", ly("Silent", None) + MUSIC)
    piece("song", ly("Song", "Public Domain", "Voice and Piano") + MUSIC)
    piece("suite", ly("Suite", "Public Domain"), "header.ly")  # header apart, Mutopia-style
    piece("suite", '\\include "header.ly"\n' + MUSIC, "suite.ly")
    piece("broken", ly("Broken", "Public Domain") + "\\score { \\relative c'' { c4 d\n\\midi {} }")
    return tmp_path / "clone"


def test_header_fields_and_older_names() -> None:
    header = lilypond_header(ly("Minuet", "Public Domain") + MUSIC)
    assert header["licence"] == "Public Domain" and header["title"] == "Minuet"
    assert header["composer"] == "TesterA" and header["instruments"] == "Piano"
    assert header["credit"] == "typeset by Jo Setter" and header["work"]
    assert (
        lilypond_header(ly("A", "Public Domain", field="copyright"))["licence"] == "Public Domain"
    )
    assert lilypond_header("\\relative c'' { c4 }")["work"] == ""  # an included part


def test_licence_per_piece_and_the_header_file_pattern(clone: Path) -> None:
    kept, left_out = list_scores(get_source("mutopia"), clone, piano_only=True)
    sources = sorted(k.source.split("/", 2)[-1] for k in kept)
    assert sources == [
        "broken/broken.ly",
        "minuet/minuet.ly",
        "old/old.ly",
        "rondo/rondo.ly",
        "suite/suite.ly",
    ]  # fmt: skip  (the header's includer, not header.ly)
    reasons = {e["source"].split("/", 2)[-1]: e["reason"] for e in left_out}
    assert "Attribution-ShareAlike" in reasons["shared/shared.ly"]
    assert reasons["silent/silent.ly"] == "it states no licence"
    assert reasons["song/song.ly"] == "not for piano alone (Voice and Piano)"
    assert "suite/suite.ly" not in reasons  # a file without a header is a part: not listed


@pytest.mark.skipif(
    lilypond_executable() is None, reason="LilyPond not installed (pip install lilypond)"
)
def test_lilypond_writes_the_midi_and_credits_each_piece(clone: Path) -> None:
    folder, record = import_folder("mutopia", clone, piano_only=True, workers=1, progress=False)
    assert record["converter"].startswith("LilyPond ")
    made = sorted(p["piece"] for p in record["pieces"])
    assert made == ["minuet.mid", "old.mid", "rondo.mid", "suite.mid"]
    assert [f["source"].split("/")[-1] for f in record["failures"]] == ["broken.ly"]
    score = symusic.Score(str(folder / "minuet.mid"))
    assert score.note_num() == 8  # 5 treble notes and 3 bass notes, as written
    credits = (folder / "CREDITS.txt").read_text()
    assert "Mutopia Project" in credits and "typeset by Jo Setter" in credits
    assert "Creative Commons Attribution 4.0" in credits
    saved = json.loads((folder / "source.json").read_text())
    assert {p["licence"] for p in saved["pieces"]} == {
        "Public Domain",
        "Creative Commons Attribution 4.0",
    }
    assert not list(clone.rglob("*.mid*"))  # the clone is never written to
