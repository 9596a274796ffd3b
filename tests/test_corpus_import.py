"""`corpus import`: a clone's score files to a MIDI folder with provenance, licences checked
per file, one edition per work, failures isolated, the result cached."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from lstm_music.cli import main
from lstm_music.corpus.import_registry import get_source
from lstm_music.corpus.importer import import_folder, is_piano, list_scores
from lstm_music.errors import LstmMusicError

pytest.importorskip("music21")

CC_BY = "!!!YEM: License CC-BY-4.0 (https://creativecommons.org/licenses/by/4.0)"
TUNE = "**kern\n*M4/4\n=1\n4c\n4d\n4e\n4f\n=2\n2g\n2g\n==\n*-\n"


def kern(title: str, licence: str = CC_BY, instruments: str = "1 piano", opus: str = "") -> str:
    records = ["!!!COM: Tester, Anna", f"!!!OTL: {title}", f"!!!AIN: {instruments}", licence]
    return "\n".join(records + ([f"!!!OPS: {opus}"] if opus else [])) + "\n" + TUNE


@pytest.fixture
def clone(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("LSTM_MUSIC_CACHE", str(tmp_path / "cache"))
    kern_dir = tmp_path / "clone" / "kern"
    kern_dir.mkdir(parents=True)
    (kern_dir / "001-1-A.krn").write_text(kern("Rondo", opus="Op. 1"))
    (kern_dir / "001-1a-B.krn").write_text(kern("Rondo", opus="Op. 1"))  # another edition
    (kern_dir / "002-1-A.krn").write_text(kern("Waltz", "!!!YEM: Copyright 2023 by [Holder]"))
    both = CC_BY + "\n!!!YEM: Copyright 2023 by [Holder]"  # one open statement, one not
    (kern_dir / "006-1-A.krn").write_text(kern("Mazurka", both))
    (kern_dir / "003-1-A.krn").write_text(kern("Sonata", instruments="1 piano 1 violn"))
    (kern_dir / "004-1-A.krn").write_text("!!!OTL: Broken\n" + CC_BY + "\n**kern\n4q\n*-")
    (kern_dir / "005-1-A-violoncello.krn").write_text(kern("Duo").replace("!!!AIN: 1 piano\n", ""))
    return tmp_path / "clone"


def test_licence_edition_and_instrument_rules(clone: Path) -> None:
    source = get_source("chopin-first-editions")
    kept, left_out = list_scores(source, clone, piano_only=True)
    assert [k.source for k in kept] == ["kern/001-1-A.krn", "kern/004-1-A.krn"]  # 004: piano
    reasons = {entry["source"]: entry["reason"] for entry in left_out}
    assert reasons["kern/001-1a-B.krn"] == "another edition of a work already kept"
    assert "licence is not CC BY 4.0" in reasons["kern/002-1-A.krn"]
    assert "[Holder]" in reasons["kern/006-1-A.krn"]
    assert reasons["kern/003-1-A.krn"].startswith("not for piano alone")
    assert reasons["kern/005-1-A-violoncello.krn"] == "not for piano alone (violoncello)"
    elsewhere, _ = list_scores(get_source("polish-scores"), clone, piano_only=True)
    assert "kern/004-1-A.krn" not in [k.source for k in elsewhere]  # states none, no default
    assert kept[0].composer == "Tester, Anna" and kept[0].licence.startswith("License CC-BY")
    assert is_piano("2 piano") and is_piano("Piano") and not is_piano("voice piano")
    assert is_piano("1 forte") and not is_piano("1 alto 1 bass 1 soprn 1 tenor")
    assert not is_piano("")


def test_import_converts_records_provenance_and_is_reused(clone: Path, capsys) -> None:
    args = ["corpus", "import", "chopin-first-editions", str(clone), "--workers", "1"]
    assert main([*args, "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    folder = Path(record["folder"])
    assert folder.name == "import-chopin-first-editions"
    names = sorted(p.name for p in folder.glob("*.mid"))
    assert names == ["001-1-a.mid", "003-1-a.mid", "005-1-a-violoncello.mid"]
    piece = record["pieces"][0]
    assert piece["source"] == "kern/001-1-A.krn" and piece["title"] == "Rondo"
    assert piece["notes"] == 6 and record["converter"].startswith("music21 ")
    assert [f["source"] for f in record["failures"]] == ["kern/004-1-A.krn"]  # isolated
    credits = (folder / "CREDITS.txt").read_text()
    assert credits.startswith("Chopin first editions, (c) Narodowy Instytut Fryderyka Chopina")
    assert "CC BY 4.0" in credits and "kern/001-1-A.krn" in credits
    before = (folder / "source.json").stat().st_mtime_ns
    again, cached = import_folder("chopin-first-editions", clone, progress=False)
    assert again == folder and (folder / "source.json").stat().st_mtime_ns == before
    assert cached["count"] == 3


def test_musicxml_rights_are_read_inside_the_archive(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("LSTM_MUSIC_CACHE", str(tmp_path / "cache"))
    score = (
        '<?xml version="1.0"?><score-partwise version="3.1"><work><work-title>Song</work-title>'
        '</work><identification><creator type="composer">B. Composer</creator><rights>{}'
        '</rights></identification><part-list><score-part id="P1"><part-name>Piano</part-name>'
        '</score-part></part-list><part id="P1"><measure number="1"><attributes><divisions>1'
        "</divisions><time><beats>4</beats><beat-type>4</beat-type></time></attributes><note>"
        "<pitch><step>C</step><octave>4</octave></pitch><duration>4</duration><type>whole"
        "</type></note></measure></part></score-partwise>"
    )
    folder = tmp_path / "clone" / "scores" / "B" / "Song"
    folder.mkdir(parents=True)
    for name, rights in (("free", "OpenScore (CC0)"), ("held", "All rights reserved")):
        with zipfile.ZipFile(folder / f"{name}.mxl", "w") as archive:
            archive.writestr("META-INF/container.xml", "<container/>")
            archive.writestr("score.xml", score.format(rights))
    kept, left_out = list_scores(get_source("openscore-lieder"), tmp_path / "clone", False)
    assert [k.source for k in kept] == ["scores/B/Song/free.mxl"]
    assert kept[0].title == "Song" and kept[0].instruments == "piano"
    assert left_out[0]["reason"].endswith("'All rights reserved'")
    path, record = import_folder("openscore-lieder", tmp_path / "clone", progress=False)
    assert record["count"] == 1 and (path / "free.mid").exists()


def test_clear_errors(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("LSTM_MUSIC_CACHE", str(tmp_path / "cache"))
    with pytest.raises(LstmMusicError, match="no importable collection 'nope'"):
        import_folder("nope", tmp_path)
    with pytest.raises(LstmMusicError, match="not a folder; clone it first: git clone https"):
        import_folder("openscore-lieder", tmp_path / "missing")
    with pytest.raises(LstmMusicError, match="no score of openscore-lieder to import"):
        import_folder("openscore-lieder", tmp_path)
