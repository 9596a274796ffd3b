"""Built-in corpora: music21's public-domain scores -> cached MIDI folders -> `prepare`."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip(
    "music21", reason='the built-in corpora need music21: pip install "lstm-music[corpora]"'
)

import symusic  # noqa: E402

from lstm_music.cli import main  # noqa: E402
from lstm_music.corpus import builtin, builtin_convert  # noqa: E402
from lstm_music.corpus.builtin import (  # noqa: E402
    COLLECTIONS,
    builtin_folder,
    cache_folder,
    get_collection,
)
from lstm_music.corpus.builtin_convert import ConvertJob, SourceScore, list_pieces, music21_corpus  # noqa: E402
from lstm_music.corpus.store import Corpus  # noqa: E402
from lstm_music.errors import LstmMusicError  # noqa: E402

NAMES = ["bach-chorales", "oneills-1850", "ryans-mammoth", "airds-airs", "northumbrian-minstrelsy"]
BACH3 = ["bwv1.6.mid", "bwv10.7.mid", "bwv101.7.mid"]


@pytest.fixture(scope="module")
def bach3_cache(tmp_path_factory) -> Path:
    """A cache root holding the first three chorales, converted once for the module."""
    root = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LSTM_MUSIC_CACHE", str(root))
        builtin_folder("bach-chorales", limit=3, progress=False)
    return root


@pytest.fixture
def cache(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("LSTM_MUSIC_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def midi_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("*.mid"))


def test_chorales_convert_to_four_voice_midi(bach3_cache: Path, monkeypatch) -> None:
    monkeypatch.setenv("LSTM_MUSIC_CACHE", str(bach3_cache))
    folder = builtin_folder("bach-chorales", limit=3, progress=False)
    assert folder == bach3_cache / "corpora" / "bach-chorales-first3"
    assert midi_files(folder) == BACH3
    for name in BACH3:
        tracks = [t for t in symusic.Score(str(folder / name)).tracks if t.notes]
        assert [t.name for t in tracks] == ["Soprano", "Alto", "Tenor", "Bass"]  # horn dropped
        assert all(len(t.notes) > 20 for t in tracks)
    source = json.loads((folder / "source.json").read_text())
    assert source["collection"] == "bach-chorales" and source["count"] == 3
    assert source["limit"] == 3 and source["failures"] == [] and source["skipped"] == []
    assert "Greentree" in source["provenance"] and source["music21_version"]
    assert not (bach3_cache / "corpora" / "bach-chorales").exists()  # the full cache untouched
    assert [p.name for p in (bach3_cache / "corpora").iterdir()] == ["bach-chorales-first3"]


def test_second_call_is_a_cache_hit(bach3_cache: Path, monkeypatch) -> None:
    monkeypatch.setenv("LSTM_MUSIC_CACHE", str(bach3_cache))
    folder = cache_folder("bach-chorales", 3)
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}

    def no_conversion(*args, **kwargs):
        raise AssertionError("converted again")

    monkeypatch.setattr(builtin_convert, "convert", no_conversion)
    monkeypatch.setitem(sys.modules, "music21", None)  # a hit needs no music21 either
    assert builtin_folder("bach-chorales", limit=3, progress=False) == folder
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == before


def test_oneills_tunes_become_one_midi_each(cache: Path) -> None:
    folder = builtin_folder("oneills-1850", limit=3, progress=False)
    assert midi_files(folder) == [
        "oneills-0001-the-enchanted-valley.mid",
        "oneills-0002-fare-you-well.mid",
        "oneills-0003-the-little-heathy-hill.mid",
    ]
    for path in folder.glob("*.mid"):
        tracks = [t for t in symusic.Score(str(path)).tracks if t.notes]
        assert len(tracks) == 1 and len(tracks[0].notes) > 30
    source = json.loads((folder / "source.json").read_text())
    assert source["count"] == 3 and "O'Neill" in source["provenance"]
    assert [p.name for p in (cache / "corpora").iterdir()] == ["oneills-1850-first3"]


def test_piece_lists_are_complete_unique_and_readable() -> None:
    corpus_dir = music21_corpus()
    for collection in COLLECTIONS:
        names = [p.name for p in list_pieces(collection, corpus_dir)]
        assert len(names) == len(set(names)), collection.name
        assert all(re.fullmatch(r"[a-z0-9][a-z0-9.-]*", n) for n in names), collection.name
        assert abs(len(names) - collection.approx_pieces) < 0.05 * collection.approx_pieces
    ryans = [p.name for p in list_pieces(get_collection("ryans-mammoth"), corpus_dir)]
    assert "ryans-a-willie-we-have-missd-you-strathspey" in ryans


def test_five_voice_chorale_is_skipped_and_bad_repeats_are_played_straight(tmp_path) -> None:
    corpus_dir = music21_corpus()
    job = ConvertJob(str(corpus_dir), str(tmp_path), "chorales")
    result = job(SourceScore("bwv27.6", "bach/bwv27.6.mxl"))
    assert result["status"] == "skipped" and "not four voices" in result["reason"]
    assert not (tmp_path / "bwv27.6.mid").exists()
    [tune] = [
        p
        for p in list_pieces(get_collection("oneills-1850"), corpus_dir)
        if p.name.startswith("oneills-1836-")
    ]  # its repeats are badly formed for music21's expansion
    result = ConvertJob(str(corpus_dir), str(tmp_path), "abc")(tune)
    assert result["status"] == "ok" and result["notes"] > 30


def test_doubled_part_names_become_voice_names(tmp_path: Path) -> None:
    job = ConvertJob(str(music21_corpus()), str(tmp_path), "chorales")
    assert (
        job(SourceScore("bwv171.6", "bach/bwv171.6.mxl"))["status"] == "ok"
    )  # "Soprano\rOboe 1,2"
    tracks = [t for t in symusic.Score(str(tmp_path / "bwv171.6.mid")).tracks if t.notes]
    assert [t.name for t in tracks] == ["Soprano", "Alto", "Tenor", "Bass"]


def test_slow_repeat_expansion_falls_back_to_straight_through(tmp_path, monkeypatch) -> None:
    corpus_dir = music21_corpus()
    [reel] = [
        p
        for p in list_pieces(get_collection("ryans-mammoth"), corpus_dir)
        if p.name == "ryans-acacia-reel"
    ]
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    expanded = ConvertJob(str(corpus_dir), str(tmp_path / "a"), "abc")(reel)
    monkeypatch.setattr(builtin_convert, "REPEAT_SECONDS", 0.001)
    straight = ConvertJob(str(corpus_dir), str(tmp_path / "b"), "abc")(reel)
    assert expanded["status"] == straight["status"] == "ok"
    assert 0 < straight["notes"] < expanded["notes"]  # each repeated half played once


def test_failures_are_counted_not_fatal_unless_nothing_converts(cache: Path, monkeypatch) -> None:
    real = list_pieces
    missing = SourceScore("missing", "bach/no-such-chorale.mxl")
    monkeypatch.setattr(builtin_convert, "list_pieces", lambda c, d: [*real(c, d)[:1], missing])
    folder = builtin_folder("bach-chorales", limit=2, progress=False)
    source = json.loads((folder / "source.json").read_text())
    assert source["count"] == 1 and midi_files(folder) == ["bwv1.6.mid"]
    assert [f["piece"] for f in source["failures"]] == ["missing"]
    monkeypatch.setattr(builtin_convert, "list_pieces", lambda c, d: [missing])
    with pytest.raises(LstmMusicError, match="no piece converted"):
        builtin_folder("bach-chorales", limit=1, progress=False)
    assert sorted(p.name for p in (cache / "corpora").iterdir()) == ["bach-chorales-first2"]


def test_prepare_builtin_makes_a_corpus(bach3_cache: Path, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LSTM_MUSIC_CACHE", str(bach3_cache))
    out = tmp_path / "corpus"
    argv = ["prepare", "--builtin", "bach-chorales", "--builtin-limit", "3", "--out", str(out)]
    assert main([*argv, "-q", "--valid-fraction", "0.34"]) == 0
    corpus = Corpus.load(out)
    assert sorted(p.source for p in corpus.pieces) == BACH3
    assert {p.split for p in corpus.pieces} == {"train", "valid"}


def test_unknown_name_lists_the_collections(cache: Path, capsys, tmp_path: Path) -> None:
    with pytest.raises(LstmMusicError, match="choose one of: " + ", ".join(NAMES)):
        builtin_folder("essen")
    assert main(["prepare", "--builtin", "essen", "--out", str(tmp_path / "c")]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and ", ".join(NAMES) in error
    assert not (tmp_path / "c").exists() and not cache.exists()


def test_prepare_needs_an_input_or_builtin(capsys, tmp_path: Path) -> None:
    assert main(["prepare", "--out", str(tmp_path / "c")]) == 1
    assert "--builtin NAME" in capsys.readouterr().err
    assert main(["prepare", str(tmp_path), "--builtin-limit", "3", "--out", "c"]) == 1
    assert "--builtin-limit goes with --builtin" in capsys.readouterr().err


def test_missing_music21_gives_the_install_hint(cache: Path, monkeypatch, capsys, tmp_path) -> None:
    monkeypatch.setitem(sys.modules, "music21", None)  # `import music21` now raises ImportError
    with pytest.raises(LstmMusicError, match=re.escape('pip install "lstm-music[corpora]"')):
        builtin_folder("oneills-1850", limit=2, progress=False)
    argv = ["prepare", "--builtin", "bach-chorales", "--builtin-limit", "2"]
    assert main([*argv, "--out", str(tmp_path / "c"), "-q"]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert error.startswith("lstm-music prepare: error:") and "pip install music21" in error
    assert not cache.exists()  # nothing written, not even a temporary folder


def test_corpus_builtin_lists_collections_and_cache(cache: Path, capsys) -> None:
    assert main(["corpus", "builtin"]) == 0
    text = capsys.readouterr().out
    assert all(re.search(rf"^{name}\s+~\d+\s.*\sno$", text, re.M) for name in NAMES)
    folder = cache_folder("oneills-1850")  # fake a finished conversion
    folder.mkdir(parents=True)
    (folder / "source.json").write_text(json.dumps({"format": builtin.FORMAT, "count": 1234}))
    assert main(["corpus", "builtin", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert list(rows) == NAMES
    assert rows["oneills-1850"]["cached"] and rows["oneills-1850"]["pieces"] == 1234
    assert rows["oneills-1850"]["cache_folder"] == str(folder)
    assert (
        not rows["bach-chorales"]["cached"] and "public domain" in rows["ryans-mammoth"]["licence"]
    )
    assert main(["corpus", "builtin"]) == 0
    assert re.search(
        rf"^oneills-1850\s+1,234\s.*\s{re.escape(str(folder))}$", capsys.readouterr().out, re.M
    )


def test_cli_and_listing_never_import_music21() -> None:
    code = (
        "import sys; from lstm_music.cli import main; import lstm_music.corpus.builtin;"
        "main(['corpus', 'builtin', '--json']);"
        "assert 'music21' not in sys.modules, 'music21 imported'"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_cache_root_follows_the_environment(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.delenv("LSTM_MUSIC_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_folder("ryans-mammoth") == tmp_path / "xdg/lstm-music/corpora/ryans-mammoth"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    expected = tmp_path / "home/.cache/lstm-music/corpora/bach-chorales-first5"
    assert cache_folder("bach-chorales", 5) == expected
    monkeypatch.setenv("LSTM_MUSIC_CACHE", str(tmp_path / "mine"))
    assert builtin.cache_root() == tmp_path / "mine"
