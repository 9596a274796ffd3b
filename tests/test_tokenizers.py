"""Properties every tokenizer shares, parametrised across all of them (the miditok way)."""

from __future__ import annotations

import json

import pytest
from conftest import SEED_MIDI, random_melody
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lstm_music.tokens import (
    TOKENIZER_NAMES,
    TokenizerError,
    get_tokenizer,
    tokenizer_from_config,
)
from lstm_music.tokens.midi import TrackOptions, load_pieces

TIMED = [name for name in TOKENIZER_NAMES if name != "seed"]


@pytest.fixture(scope="module", params=TOKENIZER_NAMES)
def tokenizer(request):
    return get_tokenizer(request.param)


def merged(score):
    [(_, piece)] = load_pieces(score.dumps_midi(), TrackOptions())
    return piece


def sorted_notes(score) -> list[tuple[int, int]]:
    """(onset in sixteenths, pitch) of every note: what every timed tokenizer must keep."""
    step = score.tpq / 4
    return sorted(
        (round(note.time / step), note.pitch) for track in score.tracks for note in track.notes
    )


def test_config_survives_json(tokenizer) -> None:
    config = json.loads(json.dumps(tokenizer.to_config()))
    assert config["tokenizer"] == tokenizer.name and config["version"] == tokenizer.version
    rebuilt = tokenizer_from_config(config)
    piece = merged(random_melody(7))
    assert rebuilt.encode(piece) == tokenizer.encode(piece)
    assert rebuilt.base_vocabulary() == tokenizer.base_vocabulary()


def test_foreign_or_newer_config_is_refused() -> None:
    with pytest.raises(TokenizerError, match="not a tokenizer config"):
        tokenizer_from_config({"weights": []})
    config = get_tokenizer("grid").to_config()
    config["version"] = 999
    with pytest.raises(TokenizerError, match="re-run `lstm-music prepare`"):
        tokenizer_from_config(config)


# the grid joins a key's consecutive sounding steps into one note (by design: it is a piano
# roll), so a repeated note comes back as one long note; its own tests check the roll instead
@pytest.mark.parametrize("name", [name for name in TIMED if name != "grid"])
@pytest.mark.parametrize("seed", range(4))
def test_timed_round_trip_keeps_every_note(name: str, seed: int) -> None:
    """Notes on a sixteenth grid come back with the same onsets (in beats) and pitches."""
    tokenizer = get_tokenizer(name)
    piece = merged(random_melody(seed))
    decoded = tokenizer.decode(tokenizer.encode(piece))
    assert sorted_notes(decoded) == sorted_notes(piece)


@pytest.mark.parametrize("seed", range(4))
def test_tokens_are_stable_after_one_cycle(tokenizer, seed: int) -> None:
    tokens = tokenizer.encode(merged(random_melody(seed)))
    assert tokenizer.encode(tokenizer.decode(tokens)) == tokens


def test_round_trip_on_real_files(tokenizer) -> None:
    if not SEED_MIDI.is_dir():
        pytest.skip(f"no seed MIDI files at {SEED_MIDI} (a user's clone lacks ../shared)")
    for path in sorted(SEED_MIDI.glob("*.mid"))[:5]:
        [(_, piece)] = load_pieces(path.read_bytes(), TrackOptions())
        tokens = tokenizer.encode(piece)
        again = tokenizer.encode(tokenizer.decode(tokens))
        if tokenizer.name == "seed":  # the seed renders every token one quarter apart
            from lstm_music.tokens.seed import pitch_name

            # ...and a one-pitch-class chord (`4`) as a single note in octave 4 (`E4`)
            assert again == [pitch_name(60 + int(t)) if t.isdigit() else t for t in tokens]
        else:  # a decode/encode cycle is stable once the notes are quantised
            assert tokenizer.encode(tokenizer.decode(again)) == again


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_decode_never_raises_on_any_sequence(tokenizer, data) -> None:
    """Generated sequences can be any order of known (and unknown) tokens."""
    vocabulary = tokenizer.base_vocabulary() or ["C4", "0.4.7", "B-3", "11.2", "F#5"]
    tokens = data.draw(st.lists(st.sampled_from([*vocabulary, "<bos>", "junk"]), max_size=60))
    score = tokenizer.decode(tokens)
    assert score.note_num() >= 0


@pytest.mark.parametrize("shift", [-5, -1, 2, 6])
def test_transposing_tokens_equals_encoding_transposed_music(tokenizer, shift: int) -> None:
    """Augmentation moves token ids; that must be what encoding the moved notes would give."""
    piece = merged(random_melody(3))
    moved = piece.shift_pitch(shift)
    expected = tokenizer.encode(moved)
    assert [tokenizer.transpose_token(t, shift) for t in tokenizer.encode(piece)] == expected


HOSTILE_MIDITOK = {
    "beat_res 0_4000": ({"beat_res": {"0_4000": 480}}, "beat_res"),  # was 11 s and 1.5 GB
    "beat_res NaN steps": ({"beat_res": {"0_4": float("nan")}}, "out of range"),
    "many ranges": ({"beat_res": {f"{i}_64": 96 for i in range(16)}}, "tokens"),
    "num_velocities": ({"num_velocities": 10**6}, "num_velocities"),
    "pitch_range": ({"pitch_range": [-5, 300]}, "pitch_range"),
    "time signatures": ({"time_signature_range": {"3": [4]}}, "time_signature_range"),
    "pitch bends": ({"pitch_bend_range": [-8192, 8191, 100_000]}, "pitch_bend_range"),
    "max_bar_embedding": ({"additional_params": {"max_bar_embedding": 10**5}}, "bar"),
}


@pytest.mark.parametrize("name", list(HOSTILE_MIDITOK))
def test_miditok_parameters_are_bounded_before_miditok_builds(monkeypatch, name) -> None:
    from lstm_music.tokens import tokenizer_from_config
    from lstm_music.tokens.miditok_adapter import import_miditok

    def refuse(*args, **kwargs):
        raise AssertionError("MidiTok was asked to build this config")

    monkeypatch.setattr(import_miditok(), "REMI", refuse)
    config, needed = HOSTILE_MIDITOK[name]
    stored = {"tokenizer": "remi", "version": 1, "params": {"kind": "remi", "config": config}}
    with pytest.raises(TokenizerError, match=needed):
        tokenizer_from_config(stored)


def test_sane_tokenizer_configs_pass_the_bounds() -> None:
    from lstm_music.tokens import check_tokenizer_config, tokenizer_from_config

    for name in ("remi", "tsd", "midilike", "structured", "seed", "grid"):
        config = get_tokenizer(name).to_config()
        check_tokenizer_config(config)
        assert tokenizer_from_config(config).to_config() == config
    fine = {"beat_res": {"0_4": 96, "4_64": 8}, "num_velocities": 127, "pitch_range": [0, 127]}
    assert len(get_tokenizer("remi", config=fine).base_vocabulary()) > 1000
    for params in ({"step": 0}, {"step": "x"}, {"size": 1}):
        with pytest.raises(TokenizerError):
            check_tokenizer_config({"tokenizer": "grid", "version": 1, "params": params})
