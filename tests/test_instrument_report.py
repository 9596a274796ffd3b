"""`prepare --tracks instruments` says which files had tracks of one instrument merged, and
`corpus info` names the corpus's instruments (issue 19.16)."""

from __future__ import annotations

import json
from pathlib import Path

import symusic
from conftest import random_melody, write_midi
from test_instruments import BASS, PIANO, STRINGS, band, per_instrument

from lstm_music.cli import main
from lstm_music.corpus.store import Corpus
from lstm_music.tokens.midi import TrackOptions, read_pieces

PIANO_MERGED = {"program": PIANO, "name": "Acoustic Grand Piano", "tracks": 2}


def two_drum_tracks(seed: int) -> symusic.Score:
    """The band, its drums split into a kick track and a snare track."""
    score = band(seed)
    drums = score.tracks[0]
    kick, snare = symusic.Track("kick", 0, True), symusic.Track("snare", 0, True)
    for note in drums.notes:
        (kick if note.pitch < 41 else snare).notes.append(note)
    score.tracks = [kick, snare, *list(score.tracks)[1:]]
    return score


def test_reading_says_which_instruments_had_their_tracks_merged() -> None:
    # the band's piano is two tracks of program 0 (right and left hand)
    _, trimmed = read_pieces(band(1).dumps_midi(), TrackOptions("instruments"))
    assert trimmed.merged_tracks == [PIANO_MERGED]
    _, trimmed = read_pieces(two_drum_tracks(1).dumps_midi(), TrackOptions("instruments"))
    assert trimmed.merged_tracks == [{"program": -1, "name": "Drums", "tracks": 2}, PIANO_MERGED]
    # merge mode merges every track by design: nothing to say
    assert read_pieces(band(1).dumps_midi(), TrackOptions())[1].merged_tracks == []


def test_prepare_and_corpus_info_name_the_instruments_and_the_merges(
    tmp_path: Path, capsys
) -> None:
    folder = tmp_path / "in"
    write_midi(folder / "band.mid", band(3))
    write_midi(folder / "drums.mid", two_drum_tracks(4))
    solo = random_melody(5)
    solo.tracks[0].program = STRINGS
    write_midi(folder / "solo.mid", solo)
    corpus = tmp_path / "c"
    flags = ["--tracks", "instruments", "--valid-fraction", "0", "-q"]
    assert main(["prepare", str(folder), "--out", str(corpus), *flags]) == 0
    out = capsys.readouterr().out
    merged = "tracks that share one instrument were merged into one stream in 2 file(s)"
    assert f"{merged} (Acoustic Grand Piano in 2, Drums in 1): band.mid, drums.mid" in out
    files = {f["source"]: f for f in json.loads((corpus / "manifest.json").read_text())["files"]}
    assert files["band.mid"]["trimmed"]["merged_tracks"] == [PIANO_MERGED]
    assert "merged_tracks" not in files["solo.mid"]["trimmed"]

    assert main(["corpus", "info", str(corpus)]) == 0
    info = capsys.readouterr().out
    assert "4 instrument(s):" in info and merged in info
    assert main(["corpus", "info", str(corpus), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    expected: dict[int, int] = {}
    for name in ("band.mid", "drums.mid", "solo.mid"):  # the notes the corpus was read with
        [(_, piece)], _ = read_pieces((folder / name).read_bytes(), TrackOptions("instruments"))
        for program, count in per_instrument(piece).items():
            expected[program] = expected.get(program, 0) + count
    found = {i["program"]: i["notes"] for i in summary["instruments"]}
    assert found == expected and set(found) == {-1, PIANO, BASS, STRINGS}
    assert [i["name"] for i in summary["instruments"]][0] in info
    assert summary["merged_tracks"]["files"] == ["band.mid", "drums.mid"]
    assert Corpus.load(corpus).token_counts().sum() == len(Corpus.load(corpus).ids)


def test_a_corpus_without_instruments_says_so(tmp_path: Path, capsys) -> None:
    write_midi(tmp_path / "in" / "band.mid", band(2))
    assert main(["prepare", str(tmp_path / "in"), "--out", str(tmp_path / "c"), "-q"]) == 0
    out = capsys.readouterr().out
    assert "instrument" not in out  # merge mode: the summary stays as it was
    assert main(["corpus", "info", str(tmp_path / "c")]) == 0
    info = capsys.readouterr().out
    assert "instruments: not kept (--tracks merge: every file's tracks merged into one" in info
