"""More built-in collections (Aird's Airs, Northumbrian Minstrelsy) and several as one corpus."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip(
    "music21", reason='the built-in corpora need music21: pip install "lstm-music[corpora]"'
)

import symusic  # noqa: E402
from conftest import random_melody, write_midi  # noqa: E402

from lstm_music.cli import main  # noqa: E402
from lstm_music.corpus import builtin_convert  # noqa: E402
from lstm_music.corpus.builtin import (  # noqa: E402
    COLLECTIONS,
    FORMAT,
    cache_folder,
    get_collection,
    resolve_names,
)
from lstm_music.corpus.builtin_convert import ConvertJob, list_pieces, music21_corpus  # noqa: E402
from lstm_music.corpus.store import Corpus  # noqa: E402
from lstm_music.errors import LstmMusicError  # noqa: E402

NAMES = [collection.name for collection in COLLECTIONS]


@pytest.fixture
def cache(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("LSTM_MUSIC_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def fake_conversion(name: str, limit: int, seed: int) -> Path:
    """A finished cache folder of `limit` small random pieces, as a conversion leaves it."""
    folder = cache_folder(name, limit)
    for index in range(limit):
        write_midi(folder / f"{name}-{index}.mid", random_melody(seed * 100 + index))
    source = {"format": FORMAT, "collection": name, "count": limit, "skipped": []}
    (folder / "source.json").write_text(json.dumps(source))
    return folder


@pytest.fixture
def no_conversion(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("converted although the cache was there")

    monkeypatch.setattr(builtin_convert, "convert", refuse)


def test_resolve_names() -> None:
    assert resolve_names("all") == NAMES
    assert resolve_names(" airds-airs,bach-chorales,airds-airs ") == ["airds-airs", "bach-chorales"]
    assert resolve_names("ryans-mammoth,all") == NAMES
    with pytest.raises(LstmMusicError, match="no built-in collection 'essen'"):
        resolve_names("bach-chorales,essen")
    with pytest.raises(LstmMusicError, match="name a built-in collection"):
        resolve_names(" , ")


def test_new_collections_are_registered_with_provenance() -> None:
    assert {"airds-airs", "northumbrian-minstrelsy"} <= set(NAMES)
    for name in ("airds-airs", "northumbrian-minstrelsy"):
        collection = get_collection(name)
        assert "public domain" in collection.licence and "Jack Campin" in collection.provenance
        assert "license.txt" in collection.provenance


def test_aird_and_northumbrian_piece_lists() -> None:
    corpus_dir = music21_corpus()
    airds = list_pieces(get_collection("airds-airs"), corpus_dir)
    assert airds[0].name == "airds-0001-the-ranting-highlandman"
    assert airds[-1].name.startswith("airds-1180-")
    assert {p.source.split("#")[0] for p in airds} == {
        f"airdsAirs/book{i}.abc" for i in range(1, 7)
    }
    north = list_pieces(get_collection("northumbrian-minstrelsy"), corpus_dir)
    assert north[0].name == "northumbrian-0001-chevy-chase-1" and len(north) == 129
    # only Campin's own file: the fife tunes (unknown original encoder) stay out
    assert {p.source.split("#")[0] for p in north} == {"miscFolk/northumbrianminstrelsyopus.abc"}


def test_new_tunes_convert_and_empty_voices_are_dropped(tmp_path: Path) -> None:
    corpus_dir = music21_corpus()
    airds = list_pieces(get_collection("airds-airs"), corpus_dir)
    north = list_pieces(get_collection("northumbrian-minstrelsy"), corpus_dir)
    merged = [p for p in airds if "\nV:2" in (p.text or "")]  # music21 leaves empty parts
    assert len(merged) == 2
    job = ConvertJob(str(corpus_dir), str(tmp_path), "abc")
    for piece in (airds[0], north[0], *merged):
        result = job(piece)
        assert result["status"] == "ok" and result["notes"] > 10, piece.name
        tracks = [t for t in symusic.Score(str(tmp_path / f"{piece.name}.mid")).tracks if t.notes]
        assert len(tracks) == 1, piece.name


def test_prepare_merges_several_builtins(cache: Path, no_conversion, tmp_path: Path) -> None:
    for seed, name in enumerate(("bach-chorales", "airds-airs")):
        fake_conversion(name, 4, seed)
    out = tmp_path / "corpus"
    argv = ["prepare", "--builtin", "bach-chorales,airds-airs", "--builtin-limit", "4"]
    assert main([*argv, "--out", str(out), "-q", "--valid-fraction", "0.25"]) == 0
    corpus = Corpus.load(out)
    sources = sorted(p.source for p in corpus.pieces)
    expected = [f"airds-airs-first4/airds-airs-{i}.mid" for i in range(4)]
    expected += [f"bach-chorales-first4/bach-chorales-{i}.mid" for i in range(4)]
    assert sources == expected  # each piece names its collection
    assert {p.split for p in corpus.pieces} == {"train", "valid"}
    inputs = corpus.manifest["inputs"]
    assert inputs == [str(cache_folder(n, 4).resolve()) for n in ("bach-chorales", "airds-airs")]


def test_prepare_builtin_all_takes_every_collection(
    cache: Path, no_conversion, tmp_path: Path
) -> None:
    for seed, name in enumerate(NAMES):
        fake_conversion(name, 1, seed)
    out = tmp_path / "corpus"
    argv = ["prepare", "--builtin", "all", "--builtin-limit", "1", "--out", str(out), "-q"]
    assert main([*argv, "--valid-fraction", "0"]) == 0
    folders = sorted(p.source.split("/")[0] for p in Corpus.load(out).pieces)
    assert folders == sorted(f"{name}-first1" for name in NAMES)


def test_an_unknown_name_in_the_list_stops_before_anything(
    cache: Path, capsys, tmp_path: Path
) -> None:
    out = tmp_path / "c"
    assert main(["prepare", "--builtin", "bach-chorales,essen", "--out", str(out)]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "no built-in collection 'essen'" in error
    assert not out.exists() and not cache.exists()
