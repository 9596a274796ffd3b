"""`PieceStream`: the notes of a piece as it is written, the very piece `generate` writes.

Random tiny models over each tokenizer's vocabulary write near-uniform token soup (REMI's
positions jump back within bars, MIDI-like notes stay open, grid notes are held step after
step): if the finality rules hold there, they hold for trained models too.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
import symusic
import torch
from conftest import random_melody

from lstm_music.corpus.store import SPECIAL_TOKENS
from lstm_music.errors import LstmMusicError, SettingError
from lstm_music.generation.generate import generate
from lstm_music.generation.primers import (
    BAR_TOKEN,
    PlayedNote,
    phrase_primer,
    played_score,
    score_primer,
)
from lstm_music.generation.sampling import SamplingOptions
from lstm_music.generation.stream import FIRST_STEPS, PieceStream
from lstm_music.model.checkpoint import Checkpoint
from lstm_music.model.lstm import LSTMModel, ModelConfig
from lstm_music.tokens import get_tokenizer
from lstm_music.tokens.grid import VOCABULARY as GRID_VOCABULARY
from lstm_music.tokens.instruments import instrument_of
from lstm_music.tokens.seed import pitch_name
from lstm_music.tokens.timing import seconds_at

TOKENIZERS = ("remi", "tsd", "structured", "midilike", "grid", "seed")


# which kinds of token may follow which: a grammar that writes whole notes, time going forward
# (and REMI's positions back and forth within a bar), far more often than random tokens would
GRAMMARS = {
    "remi": {"<bos>": ["Bar"], "Bar": ["Position"], "Position": ["Pitch", "PitchDrum"],
             "Pitch": ["Velocity"], "PitchDrum": ["Velocity"], "Velocity": ["Duration"],
             "Duration": ["Pitch", "Position", "Bar"]},
    "tsd": {"<bos>": ["Pitch"], "TimeShift": ["Pitch", "PitchDrum"], "Pitch": ["Velocity"],
            "PitchDrum": ["Velocity"], "Velocity": ["Duration"],
            "Duration": ["Pitch", "TimeShift"]},
    "structured": {"<bos>": ["TimeShift"], "TimeShift": ["Pitch", "PitchDrum"],
                   "Pitch": ["Velocity"], "PitchDrum": ["Velocity"], "Velocity": ["Duration"],
                   "Duration": ["TimeShift"]},
    "midilike": {"<bos>": ["NoteOn"], "NoteOn": ["Velocity"], "DrumOn": ["Velocity"],
                 "Velocity": ["NoteOn", "TimeShift"], "TimeShift": ["NoteOff", "NoteOn", "DrumOn"],
                 "NoteOff": ["TimeShift", "NoteOff", "NoteOn"]},
}  # fmt: skip


def chosen_tokens(vocabulary: list[str], kinds, every: bool = False) -> list[str]:
    """A few tokens of each kind (every one of them with `every`): short durations and time
    shifts, pitches and velocities from the middle, bar positions spread over the bar."""
    chosen = []
    for kind in kinds:
        group = [token for token in vocabulary if token.split("_")[0] == kind]
        if every:
            chosen += group
        elif kind in ("Duration", "TimeShift"):
            chosen += group[:3]
        elif kind == "Position":
            chosen += group[:: max(1, len(group) // 8)]
        else:
            chosen += group[len(group) // 2 :][:4]
    return chosen


def grammar_model(kind: str, every: bool = False) -> Checkpoint:
    """An LSTM that is a Markov chain over token kinds: each token is followed by a token of a
    kind its grammar allows, each such kind as likely, then any token of it. One-hot
    embedding; the cell keeps the last token only (input gate open, forget gate shut); the head
    scores the allowed next tokens."""
    tokenizer = get_tokenizer(kind)
    grammar = GRAMMARS[kind]
    words = [*SPECIAL_TOKENS, *chosen_tokens(tokenizer.base_vocabulary(), grammar, every)]
    size = len(words)
    model = LSTMModel(ModelConfig(size, size, [size], 0.0)).eval()
    layer, eye = model.layers[0], torch.eye(size)
    with torch.no_grad():
        model.embedding.weight.copy_(eye)
        layer.weight_hh_l0.zero_()
        layer.weight_ih_l0.zero_()
        layer.weight_ih_l0[2 * size : 3 * size] = 10 * eye  # the cell holds the last token
        layer.bias_ih_l0.copy_(
            torch.cat([torch.full((size,), value) for value in (10, -10, 0, 10)])
        )
        layer.bias_hh_l0.zero_()
        model.head.bias.zero_()
        model.head.weight.zero_()
        kinds = [word.split("_")[0] for word in words]
        sizes = Counter(kinds)
        for prev, kind in enumerate(kinds):
            for following in grammar.get(kind, ()):  # each allowed kind as likely as the others
                allowed = [nxt for nxt, other in enumerate(kinds) if other == following]
                logit = 30 - math.log(sizes[following])
                model.head.weight[allowed, prev] = logit / math.tanh(1)  # h is tanh(1) there
    return Checkpoint(model, tokenizer.to_config(), words)


def tiny_model(kind: str, seed: int = 0) -> Checkpoint:
    """A model for each tokenizer: the grammar's for MidiTok's, a random tiny LSTM for the grid
    and the seed's tokens (every token of theirs is notes or a step)."""
    if kind in GRAMMARS:
        return grammar_model(kind)
    if kind == "grid":
        tokenizer, tokens = get_tokenizer("grid"), list(GRID_VOCABULARY)
    else:
        tokenizer = get_tokenizer("seed")
        tokens = [pitch_name(p) for p in range(48, 73)] + ["0.4.7", "2.5.9", "0.3.7"]
    words = [*SPECIAL_TOKENS, *tokens]
    torch.manual_seed(seed)
    model = LSTMModel(ModelConfig(len(words), 8, [16], 0.0)).eval()
    return Checkpoint(model, tokenizer.to_config(), words)


def streamed(checkpoint: Checkpoint, options: SamplingOptions, **kwargs):
    stream = PieceStream(checkpoint, options, **kwargs)
    return stream, list(stream)


def seconds_notes(score: symusic.Score) -> Counter:
    """Every note as (start s, duration s, pitch, velocity, program), rounded as streamed."""
    notes = Counter()
    for track in score.tracks:
        for note in track.notes:
            start = seconds_at(score, note.time)
            end = seconds_at(score, note.time + note.duration)
            key = (round(start, 4), round(end - start, 4), note.pitch, note.velocity)
            notes[(*key, instrument_of(track))] += 1
    return notes


def as_keys(notes) -> Counter:
    return Counter((n.start, n.duration, n.pitch, n.velocity, n.program) for n in notes)


@pytest.mark.parametrize("kind", TOKENIZERS)
def test_the_stream_is_generate_s_piece_note_for_note(kind: str) -> None:
    checkpoint = tiny_model(kind)
    lengths = {"seed": {"tokens": 150}, "grid": {"seconds": 1.5}}  # a grid step holds many notes
    options = SamplingOptions(seed=5, **lengths.get(kind, {"seconds": 12}))
    stream, batches = streamed(checkpoint, options)
    [expected] = generate(checkpoint, options)
    assert stream.piece.tokens == expected.tokens and stream.piece.warnings == expected.warnings
    notes = [note for batch in batches for note in batch.notes]
    assert as_keys(notes) == seconds_notes(expected.score) and notes
    assert len(batches) > 1  # handed out while written, not all at the end
    starts = [note.start for note in notes]
    assert starts == sorted(starts)
    for earlier, later in zip(batches, batches[1:]):  # nothing sent later starts before
        assert earlier.written_seconds <= later.written_seconds
        assert all(note.start >= earlier.written_seconds - 1e-9 for note in later.notes)
    assert batches[-1].written_seconds == pytest.approx(expected.seconds)


def test_a_primer_s_notes_are_on_the_timeline_but_not_sent() -> None:
    checkpoint = grammar_model("remi", every=True)  # every pitch, velocity and duration
    primer = score_primer(random_melody(3, length=12), checkpoint, 200)
    options = SamplingOptions(seconds=16, seed=2, primer=primer)
    stream, batches = streamed(checkpoint, options)
    [expected] = generate(checkpoint, options)
    primer_score = checkpoint.tokenizer().decode(primer)
    assert stream.primer_seconds == pytest.approx(seconds_at(primer_score, primer_score.end()))
    assert 0 < stream.primer_seconds < 16
    sent = as_keys(note for batch in batches for note in batch.notes)
    assert sent + seconds_notes(primer_score) == seconds_notes(expected.score)


def test_until_the_first_notes_each_bar_line_is_decoded_at_the_next_step() -> None:
    checkpoint = tiny_model("remi")
    bar = checkpoint.vocabulary.index(BAR_TOKEN)

    class Watched(PieceStream):
        def _final_notes(self, score):  # score None: a decode within a chunk
            decodes.append((self.generation.new.shape[1], score is None))
            return super()._final_notes(score)

    for seed in range(4):
        decodes: list[tuple[int, bool]] = []
        stream = Watched(checkpoint, SamplingOptions(seconds=60, seed=seed))
        first = next(iter(stream))
        written = stream.generation.new[0]
        ends = [at for at, _ in decodes]
        assert first.notes and ends[-1] == len(written)
        lines = np.flatnonzero(written[1:] == bar) + 1  # where a bar is complete
        for line in lines:  # the first notes as soon as a bar holds final ones: no 32-token wait
            assert any(line < at <= line + FIRST_STEPS for at in ends), (line, decodes)
        for before, (at, within) in zip([0, *ends], decodes):  # and no decode for nothing
            assert not within or ((lines > before) & (lines <= at)).any(), (before, at)


def test_a_length_in_tokens_and_the_caps_are_generate_s() -> None:
    checkpoint = tiny_model("remi", seed=2)
    cases = {"": SamplingOptions(tokens=300, seed=1),
             "cut at the 9 s cap": SamplingOptions(tokens=3000, max_seconds=9, seed=1),
             "cap of 60 new tokens": SamplingOptions(seconds=30, max_tokens=60, seed=1),
             }  # fmt: skip
    for warning, options in cases.items():
        stream, batches = streamed(checkpoint, options)
        [expected] = generate(checkpoint, options)
        assert stream.piece.tokens == expected.tokens
        assert stream.piece.warnings == expected.warnings
        assert warning in " ".join(expected.warnings)
        assert as_keys(n for b in batches for n in b.notes) == seconds_notes(expected.score)
        assert all(
            n.start + n.duration <= expected.seconds + 1e-6 for b in batches for n in b.notes
        )


def test_a_stop_ends_the_stream_within_a_few_steps() -> None:
    checkpoint = tiny_model("remi")
    asked = []

    def stop_after_three() -> bool:
        asked.append(1)
        return len(asked) > 3

    stream, _ = streamed(
        checkpoint, SamplingOptions(seconds=120, seed=1), should_stop=stop_after_three
    )
    assert stream.piece is None  # stopped: no piece to keep
    assert stream.generation.new.shape[1] <= 4 * 32  # three steps of 32 tokens and no more


def test_a_stream_writes_one_piece_and_checks_before_any_note() -> None:
    checkpoint = tiny_model("remi")
    with pytest.raises(SettingError, match="one piece"):
        PieceStream(checkpoint, SamplingOptions(num=2))
    with pytest.raises(SettingError, match="timed tokenizer"):
        PieceStream(tiny_model("seed"), SamplingOptions(seconds=10))


def test_a_played_phrase_becomes_a_primer_in_its_tempo() -> None:
    notes = [PlayedNote(60 + i, 2.0 + 0.5 * i, 0.5, 90) for i in range(4)]  # a bar at 120
    score = played_score(notes, 120)
    assert score.tpq == 480 and [n.time for n in score.tracks[0].notes] == [1920, 2400, 2880, 3360]
    assert seconds_at(score, score.end()) == pytest.approx(4.0)
    checkpoint = grammar_model("remi", every=True)
    primer = phrase_primer(notes, 120, checkpoint, 100)
    assert primer[-1] == BAR_TOKEN  # the answer starts in the next bar
    decoded = checkpoint.tokenizer().decode(primer)
    pitches = [note.pitch for track in decoded.tracks for note in track.notes]
    assert pitches == [60, 61, 62, 63]  # leading silence cut: the phrase starts the timeline
    assert decoded.tracks[0].notes[0].time == 0
    stream, batches = streamed(
        checkpoint, SamplingOptions(seconds=8, seed=3, primer=primer, tempo=120)
    )
    assert stream.primer_seconds == pytest.approx(2.0) and stream.tempo == 120
    first = min(note.start for batch in batches for note in batch.notes)
    assert first >= stream.primer_seconds - 1e-6


def test_played_scores_keep_programs_and_drums_apart() -> None:
    notes = [PlayedNote(36, 0.0, 0.25, 100, -1), PlayedNote(40, 0.5, 1.0, 80, 33),
             PlayedNote(64, 0.25, 0.5, 70)]  # fmt: skip
    score = symusic.Score.from_midi(played_score(notes, 90).dumps_midi())
    tracks = {(t.is_drum, t.program): [n.pitch for n in t.notes] for t in score.tracks}
    assert tracks == {(True, 0): [36], (False, 33): [40], (False, 0): [64]}


def test_a_phrase_the_model_cannot_read_is_one_line() -> None:
    checkpoint = tiny_model("remi")
    with pytest.raises(LstmMusicError, match="the played phrase has no notes"):
        phrase_primer([], 120, checkpoint, 100)
    low = [PlayedNote(5, 0.0, 1.0, 80)]  # below REMI's piano range
    with pytest.raises(LstmMusicError, match="^the played phrase has no notes this model"):
        phrase_primer(low, 120, checkpoint, 100)


def test_a_phrase_primer_of_zero_tokens_is_the_whole_phrase() -> None:
    checkpoint = grammar_model("remi", every=True)
    notes = [PlayedNote(60 + i, 0.5 * i, 0.5, 90) for i in range(6)]
    whole = phrase_primer(notes, 120, checkpoint, 0)  # 0: all, as for a MIDI primer
    assert whole == phrase_primer(notes, 120, checkpoint, 1000) and len(whole) > 20
