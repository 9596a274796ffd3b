"""`--tokenizer seed` pieces: silences are cut in whole bars, so music21's tokens stay.

music21 reads notes bar by bar (a note across a bar line is read once per bar), so a cut that
moves notes against the bar lines changes the seed's tokens; `prepare --tracks separate` cut
every late-entering track's lead to nothing, and a long gap to exactly `--max-silence`.
"""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import pytest
import symusic

from lstm_music.corpus.prepare import PrepareConfig
from lstm_music.tokens.midi import read_pieces
from lstm_music.tokens.seed import SeedTokenizer
from lstm_music.tokens.seed.silences import FALLBACK_QUARTERS, cap_silences_in_bars

Q = 480  # ticks per quarter


def midi_bytes(*tracks: list[tuple[float, float, int]], signatures=((0, 4, 4),)) -> bytes:
    """A MIDI file of tracks of (start, length, pitch) notes, in quarters."""
    score = symusic.Score(Q)
    for time, numerator, denominator in signatures:
        score.time_signatures.append(symusic.TimeSignature(round(time * Q), numerator, denominator))
    for notes in tracks:
        track = symusic.Track("Piano", 0, False)
        for start, length, pitch in notes:
            track.notes.append(symusic.Note(round(start * Q), round(length * Q), pitch, 80))
        score.tracks.append(track)
    return score.dumps_midi()


def pieces(data: bytes, max_silence: float = 8.0) -> tuple[list[list[str]], float]:
    """The seed tokens of the pieces that `prepare --tokenizer seed --tracks separate` makes,
    and the quarters of silence it cut."""
    config = PrepareConfig(inputs=[], out="", tokenizer="seed", tracks="separate")
    options = replace(config.track_options(), max_silence=max_silence)
    loaded, trimmed = read_pieces(data, options)
    return [SeedTokenizer().encode(piece) for _, piece in loaded], trimmed.capped_quarters


def music21_tracks(data: bytes, tmp_path: Path) -> list[list[str]] | None:
    """music21's tokens of each part (None without music21)."""
    try:
        import music21
    except ImportError:
        return None
    path = tmp_path / "file.mid"
    path.write_bytes(data)
    parts = []
    for part in music21.converter.parse(str(path)).parts:
        tokens = []
        for element in part.recurse():
            if isinstance(element, music21.note.Note):
                tokens.append(str(element.pitch))
            elif isinstance(element, music21.chord.Chord):
                tokens.append(".".join(str(pc) for pc in element.normalOrder))
        parts.append(tokens)
    return parts


def test_a_late_track_keeps_its_place_in_the_bar(tmp_path: Path) -> None:
    # the left hand enters on beat 3 of bar 2 with a half note that crosses the bar line:
    # music21 reads it once per bar (C3 C3); cut to start at 0 it fitted in one bar (C3)
    right = [(float(beat), 1.0, 72) for beat in range(12)]
    left = [(6.0, 4.0, 48), (10.0, 1.0, 50)]
    data = midi_bytes(right, left)
    expected = [["C5"] * 12, ["C3", "C3", "D3"]]
    assert pieces(data) == (expected, 4.0)  # the left hand's first bar
    assert music21_tracks(data, tmp_path) in (None, expected)


def test_a_long_gap_is_cut_in_whole_bars(tmp_path: Path) -> None:
    # 9.5 quarters of silence (over --max-silence 8): cut to 8, the next half note (on beat 4
    # of its bar) moved to beat 2 1/2 and was no longer tied over the bar line
    notes = [(0.0, 1.0, 60), (10.5, 1.0, 62), (11.5, 2.0, 64), (13.5, 1.0, 65)]
    data = midi_bytes(notes)
    expected = [["C4", "D4", "E4", "E4", "F4"]]
    assert pieces(data) == (expected, 0.0)  # from the bar line at 4, no bar fits in 9.5 - 8
    longer = midi_bytes(
        [(0.0, 1.0, 60), *((start + 8, length, p) for start, length, p in notes[1:])]
    )
    assert pieces(longer) == (expected, 4.0)  # from the bar line at 4: 17.5 - 3 - 8 > 4
    assert music21_tracks(data, tmp_path) in (None, expected)


def test_a_triplet_after_a_gap_stays_on_its_grid(tmp_path: Path) -> None:
    # a cut of whole bars of 3/8 must also be whole quarters (two bars), else the 1/3 grid moves
    triplets = [(20.0 + k / 3, 1 / 3, 60 + k) for k in range(6)]
    notes = [(0.0, 0.5, 55), *triplets, (22.0, 1.5, 67)]
    data = midi_bytes(notes, signatures=((0, 3, 8),))
    full, _ = pieces(data, max_silence=0)  # nothing cut
    assert pieces(data) == (full, 9.0)
    assert music21_tracks(data, tmp_path) in (None, full)


def test_a_time_signature_inside_a_gap_is_not_cut_across(tmp_path: Path) -> None:
    # 3/4 takes over in the middle of the silence: bars are cut after it, where 3/4 holds
    notes = [(0.0, 1.0, 60), (23.5, 1.0, 62), (24.5, 2.0, 64)]
    data = midi_bytes(notes, signatures=((0, 4, 4), (8, 3, 4)))
    full, _ = pieces(data, max_silence=0)
    assert pieces(data) == (full, 6.0)  # two bars of 3/4
    assert music21_tracks(data, tmp_path) in (None, full)


@pytest.mark.parametrize("tracks", ["separate", "seed"])
def test_silences_are_still_capped(tracks: str) -> None:
    # a silence of 100,000 quarters shrinks to --max-silence (8) and less than a bar and a period
    # (4 + 4 quarters in 4/4): a bar line starts the cut, whole periods end it
    data = midi_bytes([(0.0, 1.0, 60), (100_001.0, 1.0, 62)], [(2.5, 1.0, 48)])
    options = PrepareConfig(inputs=[], out="", tokenizer="seed", tracks=tracks).track_options()
    loaded, trimmed = read_pieces(data, options)
    for _, piece in loaded:
        assert piece.end() < (1 + 8 + 4 + 4 + 1) * Q
    assert trimmed.capped_quarters > 100_000 - 8 - 4 - 4


def test_a_signature_just_before_the_music_falls_back_to_the_plain_cut() -> None:
    # nothing can be cut on the grid after a signature that closes a huge silence: it is cut
    # off the grid rather than kept (the reading would walk 25,000 empty bars)
    score = symusic.Score.from_midi(
        midi_bytes([(0.0, 1.0, 60), (100_000.0, 1.0, 62)], signatures=((0, 4, 4), (99_999, 3, 4)))
    )
    cut, removed = cap_silences_in_bars(score, 8.0)
    assert cut.end() == (1 + 8 + 1) * Q and removed == (100_000 - 1 - 8) * Q > FALLBACK_QUARTERS * Q


def test_max_silence_zero_cuts_nothing() -> None:
    score = symusic.Score.from_midi(midi_bytes([(6.0, 1.0, 60), (100.0, 1.0, 62)]))
    assert cap_silences_in_bars(score, 0.0)[1] == 0


def _random_file(rng: random.Random) -> bytes:
    """Tracks entering late, long gaps, chords, ties and time signatures changing anywhere."""
    tpq = rng.choice([96, 120, 384, 480, 1024])
    score, time = symusic.Score(tpq), 0
    for _ in range(rng.randint(0, 4)):
        numerator, denominator = rng.choice([2, 3, 4, 5, 7]), rng.choice([2, 4, 8, 16])
        score.time_signatures.append(symusic.TimeSignature(time, numerator, denominator))
        time += rng.randint(0, 40 * tpq)
    for _ in range(rng.randint(1, 3)):
        track, time = symusic.Track("Piano", 0, False), rng.choice([0, rng.randint(0, 30 * tpq)])
        for _ in range(rng.randint(1, 30)):
            time += rng.choice([0, tpq // 3, tpq, rng.randint(0, tpq), rng.randint(8, 40) * tpq])
            length = rng.choice([tpq // 3, tpq, 2 * tpq, rng.randint(1, 5 * tpq)])
            track.notes.append(symusic.Note(time, length, rng.randint(40, 90), 80))
        score.tracks.append(track)
    return score.dumps_midi()


@pytest.mark.parametrize("tracks", ["separate", "seed"])
def test_cutting_silences_never_changes_the_tokens(tracks: str) -> None:
    rng, tokenizer, cut = random.Random(5), SeedTokenizer(), 0
    options = PrepareConfig(inputs=[], out="", tokenizer="seed", tracks=tracks).track_options()
    for index in range(60):
        data = _random_file(rng)
        capped, trimmed = read_pieces(data, options)
        kept, _ = read_pieces(data, replace(options, max_silence=0))
        cut += trimmed.capped_quarters > 0
        ours = [tokenizer.encode(piece) for _, piece in capped]
        assert ours == [tokenizer.encode(piece) for _, piece in kept], index
    assert cut > 30  # most files had something cut
