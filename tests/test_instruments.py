"""Multi-track in, multi-track out: `prepare --tracks instruments` keeps every instrument and the
drums in one stream with program tokens, and generation writes a MIDI track per instrument.

Every fixture is made here: a band of drums, bass, piano (two hands, one program) and strings.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import symusic
from conftest import random_melody, write_midi

from lstm_music.cli import build_parser, main
from lstm_music.corpus.prepare import PrepareConfig, _settings_key
from lstm_music.corpus.store import Corpus
from lstm_music.errors import SettingError
from lstm_music.tokens import get_tokenizer, keeps_instruments, tokenizer_for_tracks
from lstm_music.tokens.instruments import (
    DRUM_CHANNEL,
    GM_NAMES,
    MAX_MELODIC,
    fit_channels,
    instrument_name,
    programs_named,
)
from lstm_music.tokens.midi import TRACK_MODES, TrackOptions, options_like, read_pieces
from lstm_music.tokens.transpose import transpose_tables

BASS, PIANO, STRINGS = 33, 0, 48
BAND = {-1: "Drums", BASS: "bass", PIANO: "piano", STRINGS: "strings"}


def band(seed: int, bars: int = 4, extra: tuple[int, ...] = ()) -> symusic.Score:
    """Drums, bass, piano in two tracks (one program), strings, and one track per `extra`
    program, on an eighth-note grid; no two notes of an instrument share an onset and pitch."""
    rng, tpq = random.Random(seed), 480
    score = symusic.Score(tpq)
    score.tempos.append(symusic.Tempo(0, 110.0))
    parts = [("drums", 0, True, (35, 47)), ("bass", BASS, False, (28, 47)),
             ("right hand", PIANO, False, (60, 84)), ("left hand", PIANO, False, (48, 59)),
             ("strings", STRINGS, False, (62, 88))]  # fmt: skip
    parts += [(f"extra {p}", p, False, (50 + i, 50 + i)) for i, p in enumerate(extra)]
    for name, program, drum, (low, high) in parts:
        track = symusic.Track(name, program, drum)
        for step in range(bars * 8):
            if rng.random() < (0.3 if name.startswith("extra") else 0.6):
                pitch, length = rng.randint(low, high), tpq // 2 * rng.choice((1, 2))
                track.notes.append(
                    symusic.Note(step * tpq // 2, length, pitch, rng.randint(40, 110))
                )
        score.tracks.append(track)
    return score


def per_instrument(score: symusic.Score) -> dict[int, int]:
    """Notes per instrument (-1 = drums), tracks of one program together."""
    counts: dict[int, int] = {}
    for track in score.tracks:
        key = -1 if track.is_drum else track.program
        counts[key] = counts.get(key, 0) + len(track.notes)
    return {key: count for key, count in counts.items() if count}


def midi_channels(data: bytes) -> list[tuple[set[int], list[tuple[int, int]]]]:
    """Per track chunk of a MIDI file: the channels of its note-ons and its (channel, program)
    changes, read from the bytes (not through symusic, which writes them)."""
    tracks, pos = [], 14
    while pos < len(data):
        assert data[pos : pos + 4] == b"MTrk"
        end = pos + 8 + int.from_bytes(data[pos + 4 : pos + 8], "big")
        i, status, notes, programs = pos + 8, 0, set(), []
        while i < end:
            while data[i] & 0x80:  # delta time
                i += 1
            i += 1
            if data[i] in (0xFF, 0xF0, 0xF7):  # meta or sysex: skip its variable length
                i += 2 if data[i] == 0xFF else 1
                length = 0
                while True:
                    length, i = (length << 7) | (data[i] & 0x7F), i + 1
                    if not data[i - 1] & 0x80:
                        break
                i += length
                continue
            if data[i] & 0x80:
                status, i = data[i], i + 1
            kind, channel = status & 0xF0, status & 0x0F
            if kind == 0xC0:
                programs.append((channel, data[i]))
            if kind == 0x90 and data[i + 1] > 0:
                notes.add(channel)
            i += 1 if kind in (0xC0, 0xD0) else 2
        tracks.append((notes, programs))
        pos = end
    return tracks


def check_channels(data: bytes) -> symusic.Score:
    """The MIDI file read back, after checking that each instrument's track plays on a channel
    of its own, drums on channel 10, every other one with its program set there."""
    score = symusic.Score.from_midi(data)
    chunks = [chunk for chunk in midi_channels(data) if chunk[0]]
    tracks = [track for track in score.tracks if len(track.notes)]
    assert len(chunks) == len(tracks) and all(len(used) == 1 for used, _ in chunks)
    channels = [min(used) for used, _ in chunks]
    assert len(set(channels)) == len(channels)  # none shared
    for channel, (_, changes), track in zip(channels, chunks, tracks):
        assert (channel == DRUM_CHANNEL) == track.is_drum
        if not track.is_drum:
            assert (channel, track.program) in changes
    return score


@pytest.fixture(scope="module")
def band_corpus(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("band")
    for i in range(6):
        write_midi(root / "midi" / f"band{i}.mid", band(i))
    code = main(["prepare", str(root / "midi"), "--out", str(root / "corpus"),
                 "--tracks", "instruments", "--quiet", "-j", "2"])  # fmt: skip
    assert code == 0
    return root / "midi", root / "corpus"


def test_round_trip_keeps_programs_drums_and_notes(band_corpus, tmp_path: Path) -> None:
    midi, corpus_path = band_corpus
    corpus = Corpus.load(corpus_path)
    tokenizer = corpus.tokenizer()
    assert keeps_instruments(tokenizer)
    stored = json.loads((corpus_path / "corpus.json").read_text())
    assert stored["config"]["tracks"] == "instruments"
    assert stored["tokenizer"]["params"]["config"]["use_programs"] is True  # rebuilt from it
    assert {"Program_-1", "Program_33", "PitchDrum_36"} <= set(corpus.vocabulary)
    for piece in corpus.pieces:
        original = symusic.Score.from_file(str(midi / piece.source))
        decoded = tokenizer.decode(piece.tokens)
        assert per_instrument(decoded) == per_instrument(original)  # piano's two hands merged
        assert len(decoded.tracks) == 4 and piece.info.notes == original.note_num()
        drums = [track for track in decoded.tracks if track.is_drum]
        assert len(drums) == 1 and sorted(n.pitch for n in drums[0].notes) == sorted(
            n.pitch for n in original.tracks[0].notes
        )
        written = check_channels(decoded.dumps_midi())
        assert per_instrument(written) == per_instrument(original)


def test_the_default_tokenizer_and_key_are_untouched() -> None:
    default = get_tokenizer("remi")
    assert tokenizer_for_tracks("remi", "merge").to_config() == default.to_config()
    assert not keeps_instruments(default)
    assert not any(t.startswith("Program") for t in default.base_vocabulary())
    instruments = tokenizer_for_tracks("remi", "instruments")
    assert set(default.base_vocabulary()) < set(instruments.base_vocabulary())

    def key(**settings) -> str:
        config = PrepareConfig(inputs=["x"], out="y", **settings)
        return _settings_key(config.make_tokenizer(), config)

    assert key() == key(max_instruments=3)  # the merge mode's cached tokens stay valid
    assert key(tracks="instruments") != key(tracks="instruments", max_instruments=3)


def test_instruments_over_the_cap_are_dropped_and_said(tmp_path: Path) -> None:
    score = band(1, extra=(40, 56, 73))  # 7 instruments
    write_midi(tmp_path / "in" / "big.mid", score)
    [(_, piece)], trimmed = read_pieces(
        score.dumps_midi(), TrackOptions("instruments", max_instruments=5)
    )
    counts = per_instrument(score)
    expected = sorted(counts, key=lambda p: -counts[p])[:5]
    assert sorted(per_instrument(piece)) == sorted(expected)
    assert trimmed.dropped_instruments.startswith("7 instruments, over the cap of 5: dropped")
    assert (
        instrument_name(sorted(counts, key=lambda p: counts[p])[0]) in trimmed.dropped_instruments
    )
    flags = ["--tracks", "instruments", "--max-instruments", "5", "--valid-fraction", "0"]
    code = main(["prepare", str(tmp_path / "in"), "--out", str(tmp_path / "c"), "--quiet", *flags])
    assert code == 0
    [entry] = json.loads((tmp_path / "c" / "manifest.json").read_text())["files"]
    assert entry["trimmed"]["dropped_instruments"] == trimmed.dropped_instruments
    assert read_pieces(score.dumps_midi(), TrackOptions())[1].dropped_instruments == ""


def test_transposition_leaves_drums_alone(band_corpus) -> None:
    corpus = Corpus.load(band_corpus[1])
    tokenizer, vocabulary = corpus.tokenizer(), corpus.vocabulary
    tables = transpose_tables(vocabulary, tokenizer, -3, 3)
    piece = corpus.pieces[0]
    moved = tables[2][np.asarray(piece.ids)]
    assert (moved >= 0).all()
    before = tokenizer.decode(piece.tokens)
    after = tokenizer.decode([vocabulary[i] for i in moved])
    for old, new in zip(before.tracks, after.tracks):
        shift = 0 if old.is_drum else 2
        assert (new.program, new.is_drum) == (old.program, old.is_drum)
        assert [n.pitch for n in new.notes] == [n.pitch + shift for n in old.notes]


def test_bad_instrument_settings_are_refused() -> None:
    with pytest.raises(SettingError, match="instrument tokens") as error:
        PrepareConfig(inputs=["x"], out="y", tokenizer="seed", tracks="instruments")
    assert error.value.setting == "tracks"
    for cap in (0, 17):
        with pytest.raises(SettingError, match="max_instruments must be 1 to 16"):
            PrepareConfig(inputs=["x"], out="y", tracks="instruments", max_instruments=cap)


def test_cli_track_choices_are_the_librarys() -> None:
    prepare_parser = build_parser()._subparsers._group_actions[0].choices["prepare"]
    [action] = [a for a in prepare_parser._actions if a.dest == "tracks"]
    assert tuple(action.choices) == TRACK_MODES


def test_primers_of_an_instruments_corpus_keep_their_instruments() -> None:
    options = options_like({"tracks": "instruments", "max_instruments": 3}, timed=True)
    assert (options.mode, options.max_instruments) == ("instruments", 3)
    assert options_like({"tracks": "merge"}, timed=True).mode == "merge"
    assert options_like({"tracks": "instruments", "max_instruments": "x"}, True).max_instruments
    [(_, piece)], _ = read_pieces(band(2).dumps_midi(), options)
    assert len(piece.tracks) == 3  # the cap of the corpus


def test_more_instruments_than_channels_fold_into_their_family() -> None:
    score = symusic.Score(480)
    for program in range(0, 40, 2):  # 20 melodic instruments, more notes for lower programs
        track = symusic.Track(GM_NAMES[program], program, False)
        for i in range(40 - program):
            track.notes.append(symusic.Note(i * 240, 240, 60, 80))
        score.tracks.append(track)
    notes = score.note_num()
    folded = fit_channels(score)
    assert len(score.tracks) == MAX_MELODIC and len(folded) == 5 and score.note_num() == notes
    assert fit_channels(score) == []


def test_instrument_names() -> None:
    assert len(GM_NAMES) == 128 and instrument_name(-1) == "Drums"
    assert programs_named("strings") == tuple(range(40, 52))  # the string ensembles too
    assert programs_named("synth-lead") == programs_named("Synth Lead") == tuple(range(80, 88))
    assert programs_named("drums") == (-1,) and programs_named("Violin") == (40,)
    assert programs_named("kazoo") == ()


def test_piano_roll_colours_instruments_with_a_legend(tmp_path: Path) -> None:
    from lstm_music.render.pianoroll import _colour_groups, render_png

    labels = [label for label, _ in _colour_groups(band(3))]
    assert labels == ["Drums", GM_NAMES[BASS], GM_NAMES[PIANO], GM_NAMES[STRINGS]]
    two_hands = [label for label, _ in _colour_groups(random_melody(1))]
    assert two_hands == ["right", "left"]  # one instrument: a hue per track, as before
    assert render_png(band(3), tmp_path / "band.png").stat().st_size > 5000


def test_a_tiny_model_writes_multi_track_midi(band_corpus, tmp_path: Path) -> None:
    from lstm_music.generation.pipeline import PieceFiles, write_pieces
    from lstm_music.generation.primers import midi_primer
    from lstm_music.generation.sampling import SamplingOptions
    from lstm_music.model.checkpoint import load_checkpoint
    from lstm_music.tokens.midi import read_score
    from lstm_music.training.run import train
    from lstm_music.training.settings import TrainConfig

    midi, corpus = band_corpus
    config = TrainConfig(embedding_dim=16, hidden_sizes=[32], window=32, batch_size=2,
                         max_steps=20, device="cpu", transpose="-2..2")  # fmt: skip
    train(corpus, tmp_path / "run", config, progress=False)
    checkpoint = load_checkpoint(tmp_path / "run" / "best.safetensors")  # header checks pass
    assert keeps_instruments(checkpoint.tokenizer())
    primer = midi_primer(midi / "band0.mid", checkpoint, 64)
    assert {"Program_-1", f"Program_{BASS}"} & set(primer)
    options = SamplingOptions(num=2, tokens=600, seed=3, primer=primer)
    written = write_pieces(
        checkpoint, options, lambda i: PieceFiles(tmp_path / f"{i}.mid", png=tmp_path / f"{i}.png")
    )
    for piece in written.pieces:
        data = piece.files.midi.read_bytes()
        assert read_score(data).note_num() == piece.notes > 0  # passes our own reading checks
        score = check_channels(data)
        assert len(per_instrument(score)) >= 2 and piece.files.png.is_file()


def test_programs_limit_the_other_instruments_and_crafted_programs_are_refused() -> None:
    from lstm_music.tokens import TokenizerError, tokenizer_from_config

    [(_, piece)], _ = read_pieces(band(4).dumps_midi(), TrackOptions("instruments", (BASS,)))
    assert sorted(per_instrument(piece)) == [-1, BASS]  # the drums stay
    config = tokenizer_for_tracks("remi", "instruments").to_config()
    config["params"]["config"]["programs"] = [0, 5000]
    with pytest.raises(TokenizerError, match="programs -1 to 127"):
        tokenizer_from_config(config)


def test_fluidsynth_plays_each_instrument_with_its_program(tmp_path: Path) -> None:
    import shutil

    from lstm_music.render.audio import find_soundfont, render_wav
    from lstm_music.render.synth import read_wav

    if find_soundfont() is None or shutil.which("fluidsynth") is None:
        pytest.skip("FluidSynth or a General MIDI SoundFont is not installed")
    score = band(5)
    all_piano = score.copy()
    for track in all_piano.tracks:
        track.program, track.is_drum = 0, False
    sounds = []
    for name, version in (("band", score), ("piano", all_piano)):
        result = render_wav(version, tmp_path / f"{name}.wav", engine="fluidsynth")
        sounds.append(read_wav(result.path)[0].mean(axis=1))
    length = min(len(sound) for sound in sounds)
    band_audio, piano_audio = (sound[:length] for sound in sounds)
    difference = np.abs(band_audio - piano_audio).mean() / np.abs(piano_audio).mean()
    assert difference > 0.3  # other instruments, other sounds: programs reach the synthesizer
