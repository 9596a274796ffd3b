"""Hostile MIDI headers and trailing events (issue 10, points 1-2): built here from bytes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import symusic
from conftest import make_score

from lstm_music.corpus.prepare import PrepareConfig, prepare
from lstm_music.tokens.midi import (
    MidiError,
    TrackOptions,
    cut_score,
    duration_seconds,
    load_pieces,
    read_pieces,
    read_score,
    trim_after_last_note,
)
from lstm_music.tokens.timing import MAX_QPM, seconds_at, seconds_between, ticks_at


def melody_bytes(count: int = 8, step: int = 480) -> bytes:
    """A valid one-track file: `count` notes `step` ticks apart, at 480 ticks per quarter."""
    return make_score([(i * step, step, 60 + i % 12) for i in range(count)]).dumps_midi()


def with_division(data: bytes, division: bytes) -> bytes:
    """The same file with header bytes 12-13 (the division) replaced."""
    assert data[:4] == b"MThd" and len(division) == 2
    return data[:12] + division + data[14:]


@pytest.mark.parametrize("tpq", [0, 1, 2, 23])
def test_tiny_division_is_refused_on_every_path(tpq: int) -> None:
    data = with_division(melody_bytes(), tpq.to_bytes(2, "big"))
    with pytest.raises(MidiError, match=f"{tpq} ticks per quarter note"):
        read_score(data)  # render and web upload
    with pytest.raises(MidiError, match="ticks per quarter"):
        load_pieces(data, TrackOptions())  # prepare and primers


def test_smpte_division_is_read_as_real_time() -> None:
    # 25 frames a second x 40 ticks a frame = 1000 ticks a second; notes 1000 ticks apart
    data = with_division(melody_bytes(count=10, step=1000), bytes([256 - 25, 40]))
    score = read_score(data)
    assert duration_seconds(score) == pytest.approx(10.0)
    [(_, piece)] = load_pieces(data, TrackOptions())
    assert duration_seconds(piece) == pytest.approx(10.0)


@pytest.mark.parametrize("division", [b"\x80\x00", b"\xe7\x00", b"\xff\xff"])
def test_nonsense_smpte_division_is_refused(division: bytes) -> None:
    with pytest.raises(MidiError, match="SMPTE"):
        read_score(with_division(melody_bytes(), division))


def test_read_score_clamps_absurd_tempos() -> None:
    score = make_score([(0, 480, 60), (480, 480, 62)])
    score.tempos.append(symusic.Tempo(240, 50_000_000.0))
    read = read_score(score.dumps_midi())
    assert max(t.qpm for t in read.tempos) <= MAX_QPM


def far_meta_events(tick: int) -> symusic.Score:
    """Twenty notes, then tempo, time-signature, key, control, pedal and text events at `tick`."""
    score = make_score([(i * 480, 480, 60 + i % 12) for i in range(20)])
    score.tempos.append(symusic.Tempo(tick, 90.0))
    score.time_signatures.append(symusic.TimeSignature(0, 4, 4))
    score.time_signatures.append(symusic.TimeSignature(tick, 3, 4))
    score.key_signatures.append(symusic.KeySignature(tick, 2, 0))
    score.markers.append(symusic.TextMeta(tick, "the end, much later"))
    track = score.tracks[0]
    track.controls.append(symusic.ControlChange(tick, 7, 100))
    track.pedals.append(symusic.Pedal(4800, tick))  # held down far past the last note
    track.lyrics.append(symusic.TextMeta(tick, "la"))
    return score


def test_events_after_the_last_note_are_trimmed() -> None:
    from lstm_music.tokens import get_tokenizer

    tick = 480 * 4 * 3000  # 3,000 bars after the music (a hostile file had 268 million ticks)
    [(_, piece)], trimmed = read_pieces(far_meta_events(tick).dumps_midi(), TrackOptions())
    assert piece.end() == 20 * 480
    assert trimmed.trailing_quarters == pytest.approx(tick / 480 - 20)
    assert trimmed.trailing_seconds == pytest.approx((tick / 480 - 20) * 0.5)
    tokens = get_tokenizer("remi").encode(piece)
    assert len(tokens) < 150  # 20 notes need ~90 REMI tokens, not thousands of Bar/TimeSig


def test_max_silence_zero_keeps_gaps_but_still_trims_after_the_music() -> None:
    """`--max-silence 0` (the polyphonic benchmark's) keeps leading silence and gaps, but what
    follows the last note and notes held for ages are cut all the same (issue 10, point 2)."""
    score = far_meta_events(480 * 4 * 3000).shift_time(480 * 4)  # a bar of leading silence
    score.tracks[0].notes.append(symusic.Note(480 * 64, 480 * 500, 40, 80))  # a 40-quarter gap
    [(_, piece)], trimmed = read_pieces(score.dumps_midi(), TrackOptions(max_silence=0))
    assert trimmed.long_notes == 1 and trimmed.capped_quarters == 0
    assert trimmed.trailing_quarters > 2900 * 4
    assert piece.tracks[0].notes[0].time == 480 * 4 and piece.end() == 480 * (64 + 64)
    [(_, kept)], trimmed = read_pieces(score.dumps_midi(), TrackOptions(trim_after_music=False))
    assert trimmed.trailing_quarters == 0 and kept.end() > 480 * 4 * 2900


def test_a_score_without_notes_keeps_nothing_after_tick_zero() -> None:
    score = symusic.Score(480)
    score.tempos.append(symusic.Tempo(268_000_000, 120.0))
    score.markers.append(symusic.TextMeta(1000, "x"))
    trimmed, extra = trim_after_last_note(score)
    assert extra == 268_000_000 and trimmed.end() == 0


def test_one_tempo_map_for_every_module() -> None:
    """Ticks <-> seconds and the cut live in midi.py only; render and sample use them."""
    from lstm_music.generation import generate as sample
    from lstm_music.render import audio as render

    score = make_score([(i * 480, 480, 60) for i in range(40)])
    score.tempos = [symusic.Tempo(0, 120.0), symusic.Tempo(4800, 60.0), symusic.Tempo(9600, 240.0)]
    assert seconds_at(score, 4800) == pytest.approx(5.0)
    assert seconds_at(score, 9600) == pytest.approx(15.0)
    assert seconds_between(score, 2400, 12000) == pytest.approx(2.5 + 10 + 1.25)
    assert ticks_at(score, 15.0) == 9600
    assert duration_seconds(score) == pytest.approx(float(score.to("second").end()))
    assert render.cut_score is cut_score and sample.ticks_at is ticks_at
    assert not hasattr(render, "_tempo_map") and not hasattr(render, "_shortened")


def test_prepare_reports_the_trim_in_the_manifest(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    far = far_meta_events(480 * 1000)
    far.tracks[0].notes.append(symusic.Note(20 * 480 + 480 * 40, 480, 70, 80))  # a 40-quarter gap
    (folder / "far.mid").write_bytes(far.dumps_midi())
    (folder / "plain.mid").write_bytes(melody_bytes())
    out = tmp_path / "corpus"
    result = prepare(PrepareConfig(inputs=[str(folder)], out=str(out)), progress=False)
    files = {f["source"]: f for f in json.loads((out / "manifest.json").read_text())["files"]}
    far_entry, plain = files["far.mid"], files["plain.mid"]
    assert far_entry["trimmed"]["trailing_quarters"] == pytest.approx(1000 - 61)
    assert far_entry["trimmed"]["trailing_seconds"] == pytest.approx((1000 - 61) * 0.5)
    assert far_entry["trimmed"]["capped_quarters"] == pytest.approx(40 - 8)
    assert plain["trimmed"] == {
        "trailing_quarters": 0.0,
        "trailing_seconds": 0.0,
        "capped_quarters": 0.0,
        "long_notes": 0,
    }
    assert result.trimmed_files == 1


def test_prepare_lists_a_tiny_division_and_prints_the_trim(tmp_path: Path, capsys) -> None:
    from lstm_music.cli import main

    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "tpq1.mid").write_bytes(with_division(melody_bytes(), b"\x00\x01"))
    (folder / "far.mid").write_bytes(far_meta_events(480 * 500).dumps_midi())
    code = main(["prepare", str(folder), "--out", str(tmp_path / "corpus"), "-q"])
    out = capsys.readouterr().out
    assert code == 0
    assert "tpq1.mid: corrupt MIDI: 1 ticks per quarter note" in out
    assert "silence cut from 1 file(s): 480 quarter notes after the last note" in out


def test_a_note_held_for_hours_shelters_nothing() -> None:
    """A crafted note held 80,000 quarters kept a far TimeSig in the piece: 40,000 tokens."""
    from lstm_music.tokens import get_tokenizer

    tick = 480 * 4 * 20_000
    score = make_score([(i * 480, 480, 60) for i in range(20)] + [(0, tick, 40), (tick, 480, 62)])
    score.time_signatures.append(symusic.TimeSignature(tick - 10, 3, 4))
    [(_, piece)], trimmed = read_pieces(score.dumps_midi(), TrackOptions())
    assert trimmed.long_notes == 1
    assert len(get_tokenizer("remi").encode(piece)) < 150


# ---------------------------------------------------------- delta times past 2^31 (issue 19.5)

BIGGEST_DELTA = 0x0FFFFFFF  # four bytes of variable-length quantity: 268,435,455 ticks
OVERFLOW = "corrupt MIDI: times past 1,073,741,824 ticks"


def vlq(number: int) -> bytes:
    """A MIDI variable-length quantity: seven bits a byte, high bit set on all but the last."""
    out = [number & 0x7F]
    number >>= 7
    while number:
        out.append((number & 0x7F) | 0x80)
        number >>= 7
    return bytes(reversed(out))


def one_track_file(events: list[tuple[int, bytes]], tpq: int = 480) -> bytes:
    """A format-0 file of (delta time, event bytes), written by hand: symusic cannot write
    times that symusic cannot hold."""
    body = b"".join(vlq(delta) + event for delta, event in events) + b"\x00\xff\x2f\x00"
    header = b"MThd" + (6).to_bytes(4, "big") + (0).to_bytes(2, "big") + (1).to_bytes(2, "big")
    track = b"MTrk" + len(body).to_bytes(4, "big") + body
    return header + tpq.to_bytes(2, "big") + track


def note(delta: int, pitch: int, length: int = 480) -> list[tuple[int, bytes]]:
    return [(delta, bytes([0x90, pitch, 64])), (length, bytes([0x80, pitch, 0]))]


def overflowing_files() -> dict[str, bytes]:
    """Notes BIGGEST_DELTA apart: nine of them add up past 2^31 ticks."""
    apart = note(0, 60) + [e for i in range(9) for e in note(BIGGEST_DELTA, 62 + i)]
    # a note that starts just under 2^31 and ends past it (end 2^31 + 379 in 64 bits)
    start = 2**31 - 100 - (480 + 7 * (BIGGEST_DELTA + 480))
    straddling = note(0, 60) + [e for i in range(7) for e in note(BIGGEST_DELTA, 62 + i)]
    straddling += note(start, 70)
    # controls only, far out: a note held over all of them
    held = [(0, b"\x90\x3c\x40"), *[(BIGGEST_DELTA, b"\xb0\x07\x40")] * 9, (480, b"\x80\x3c\x00")]
    return {
        "wrapped to negative times": one_track_file(apart),
        "a note ending past 2^31": one_track_file(straddling),
        "controls past 2^31": one_track_file(held),
    }


@pytest.mark.parametrize("name", list(overflowing_files()))
def test_times_past_the_tick_range_are_refused_in_one_line(name: str) -> None:
    data = overflowing_files()[name]
    with pytest.raises(MidiError) as caught:
        read_score(data)  # render, web upload, primers
    assert str(caught.value) == OVERFLOW
    for options in (TrackOptions(), TrackOptions(max_silence=0), TrackOptions(mode="instruments")):
        with pytest.raises(MidiError, match=OVERFLOW):
            read_pieces(data, options)  # prepare


def test_times_within_the_range_are_read() -> None:
    """Four of the biggest delta times (a billion ticks) are absurd but fit: capped, not refused."""
    data = one_track_file(note(0, 60) + [e for i in range(3) for e in note(BIGGEST_DELTA, 62)])
    assert len(read_score(data).tracks[0].notes) == 4
    [(_, piece)], trimmed = read_pieces(data, TrackOptions())
    assert piece.end() == 4 * 480 + 3 * 8 * 480 and trimmed.capped_quarters > 1_000_000


def test_prepare_lists_an_overflowing_file_with_the_line(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for number, data in enumerate(overflowing_files().values()):
        (folder / f"over{number}.mid").write_bytes(data)
    (folder / "plain.mid").write_bytes(melody_bytes())
    out = tmp_path / "corpus"
    prepare(PrepareConfig(inputs=[str(folder)], out=str(out)), progress=False)
    files = {f["source"]: f for f in json.loads((out / "manifest.json").read_text())["files"]}
    assert files["plain.mid"]["status"] == "ok"
    for number in range(3):
        entry = files[f"over{number}.mid"]
        assert (entry["status"], entry["reason"]) == ("failed", OVERFLOW), entry


def test_generate_with_an_overflowing_primer_says_one_line(tmp_path: Path, capsys) -> None:
    from lstm_music.cli import main

    primer = tmp_path / "over.mid"
    primer.write_bytes(overflowing_files()["a note ending past 2^31"])
    code = main(["generate", "--primer", str(primer), "--tokens", "16", "--out",
                 str(tmp_path / "out.mid")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1, err
    assert f"primer {primer}: {OVERFLOW}" in err
    assert not (tmp_path / "out.mid").exists()


def test_the_web_upload_refuses_an_overflowing_file(tmp_path: Path) -> None:
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from lstm_music.web.app import create_app

    (tmp_path / "runs").mkdir()
    with TestClient(create_app(tmp_path / "runs", tmp_path)) as client:
        for name, data in overflowing_files().items():
            answer = client.post("/api/primers", files={"file": ("over.mid", data, "audio/midi")})
            assert answer.status_code in (400, 422), (name, answer.text)
            assert answer.json()["detail"] == f"over.mid: {OVERFLOW}", (name, answer.text)
        assert client.get("/api/status").status_code == 200
