"""Every kind of bad input gets a one-line reason, never a traceback, and spoils nothing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import symusic
from conftest import make_score, random_melody, write_midi

from lstm_music.cli import main
from lstm_music.corpus.store import Corpus


def bad_files(folder: Path) -> dict[str, str]:
    """Write one file per kind of trouble; returns file name -> expected reason fragment."""
    folder.mkdir(parents=True, exist_ok=True)
    good = random_melody(3).dumps_midi()
    (folder / "text.mid").write_text("this is a text file, not MIDI")
    (folder / "random.MIDI").write_bytes(os.urandom(3000))
    (folder / "truncated.mid").write_bytes(good[: len(good) // 2])
    (folder / "header_only.mid").write_bytes(good[:14])
    write_midi(folder / "no_notes.mid", make_score([]))
    write_midi(folder / "drums.mid", make_score([(0, 120, 36), (240, 120, 38)], drum=True))
    write_midi(folder / "zero_length.mid", make_score([(0, 0, 60), (480, 0, 62)]))
    (folder / "broken_link.mid").symlink_to(folder / "does-not-exist.mid")
    os.mkfifo(folder / "fifo.mid")
    huge = make_score([(i * 10, 10, 60 + i % 12) for i in range(3000)])
    write_midi(folder / "huge.mid", huge)
    return {
        "text.mid": "not a MIDI file",
        "random.MIDI": "not a MIDI file",
        "truncated.mid": "corrupt MIDI",
        "header_only.mid": "corrupt MIDI",
        "no_notes.mid": "no notes",
        "drums.mid": "only drum tracks",
        "zero_length.mid": "only zero-length notes",
        "broken_link.mid": "unreadable",
        "fifo.mid": "not a regular file",
        "huge.mid": "over --max-notes 2000",
    }


def test_bad_files_are_listed_and_good_ones_kept(tmp_path: Path, capsys) -> None:
    expected = bad_files(tmp_path / "in")
    write_midi(tmp_path / "in" / "good.mid", random_melody(1))
    absurd = random_melody(2)
    absurd.tempos.append(symusic.Tempo(480, 100_000_000.0))  # absurd tempo: clamped, not fatal
    write_midi(tmp_path / "in" / "absurd_tempo.mid", absurd)
    (tmp_path / "in" / "loop").symlink_to(tmp_path / "in")  # a symlink loop
    code = main(
        ["prepare", str(tmp_path / "in"), "--out", str(tmp_path / "c"), "-q", "--max-notes", "2000"]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "Traceback" not in out + err
    corpus = Corpus.load(tmp_path / "c")
    assert {p.source for p in corpus.pieces} == {"good.mid", "absurd_tempo.mid"}
    entries = {f["source"]: f for f in corpus.manifest["files"]}
    for name, reason in expected.items():
        assert reason in entries[name]["reason"], (name, entries[name])
        assert entries[name]["status"] in {"skipped", "failed"}
        assert f"{name}: " in out  # the summary names every file not used
    assert any("symlink loop" in note for note in corpus.manifest["notes"])
    assert corpus.pieces[0].info.seconds < 3600


def test_no_usable_file_exits_nonzero_with_one_line(tmp_path: Path, capsys) -> None:
    bad_files(tmp_path / "in")
    code = main(
        ["prepare", str(tmp_path / "in"), "--out", str(tmp_path / "c"), "-q", "--max-notes", "2000"]
    )
    _, err = capsys.readouterr()
    assert code == 1
    assert err.count("\n") == 1 and "no usable piece in 10 MIDI file(s)" in err
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda p: p / "missing", "no such file or folder"),
        (lambda p: p.mkdir() or p, "no MIDI files"),
    ],
    ids=["missing path", "empty folder"],
)
def test_bad_inputs_give_one_line(tmp_path: Path, capsys, setup, message: str) -> None:
    target = setup(tmp_path / "input")
    code = main(["prepare", str(target), "--out", str(tmp_path / "c"), "-q"])
    _, err = capsys.readouterr()
    assert code == 1 and message in err and "Traceback" not in err
    assert err.count("\n") == 1


def test_bad_flags_are_reported(tmp_path: Path, capsys) -> None:
    write_midi(tmp_path / "a.mid", random_melody(1))
    assert main(["prepare", str(tmp_path / "a.mid"), "-q"]) == 1
    assert "--out" in capsys.readouterr().err
    for flags, fragment in (
        (["--tokenizer", "nope"], "unknown tokenizer"),
        (["--tracks", "programs"], "--programs"),
        (["--valid-fraction", "1.5"], "valid-fraction"),
        (["--tokenizer", "grid", "--grid-step", "often"], "grid"),
    ):
        code = main(
            ["prepare", str(tmp_path / "a.mid"), "--out", str(tmp_path / "c"), "-q", *flags]
        )
        err = capsys.readouterr().err
        assert code == 1 and fragment in err and "Traceback" not in err, (flags, err)


def test_long_silence_is_capped(tmp_path: Path) -> None:
    """One huge delta time must not become millions of empty-bar tokens."""
    notes = [(i * 240, 240, 60 + i % 12) for i in range(300)]
    notes += [(100_000_000 + i * 240, 240, 60 + i % 12) for i in range(300)]
    write_midi(tmp_path / "in" / "gap.mid", make_score(notes))
    main(["prepare", str(tmp_path / "in"), "--out", str(tmp_path / "c"), "-q"])
    corpus = Corpus.load(tmp_path / "c")
    assert corpus.pieces[0].info.length < 5000
    assert corpus.pieces[0].info.notes == 600
