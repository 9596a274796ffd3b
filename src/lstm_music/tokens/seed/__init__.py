"""The seed blog's tokens: music21's note names and chord normal orders, without music21.

A note is its pitch name with octave (`C#4`, `B-3`), notes that sound together are one token of
the dotted normal order of their pitch classes (`0.4.7`); timing is dropped. The reading rules
(music21's note pairing, chord grouping, quantisation, measures, voices, ties) are emulated in
`music21_rules`; several tracks are read as the one part that music21's `partitionByInstrument`
makes of them (`music21_parts`). Decoding is the blog's rendering: one token per quarter note,
chords in octave 4.
"""

from __future__ import annotations

import symusic

from lstm_music.tokens.base import Tokenizer
from lstm_music.tokens.seed.music21_parts import read_tokens
from lstm_music.tokens.seed.music21_rules import (
    CHORD_PATTERN,
    normal_order,
    parse_pitch_name,
    pitch_name,
)

__all__ = ["SeedTokenizer", "normal_order", "parse_pitch_name", "pitch_name"]

DECODE_TPQ = 480
DECODE_VELOCITY = 90


class SeedTokenizer(Tokenizer):
    """The blog's tokens: `C#4` for a note, `0.4.7` (normal order) for a chord, no timing."""

    name = "seed"
    version = 1
    timed = False
    has_pitch = True

    def encode(self, score: symusic.Score) -> list[str]:
        """Tokens in music21's order: one track bar by bar and voice by voice; several tracks as
        the part `partitionByInstrument` merges them into (chords within a track, then by time)."""
        return read_tokens(score)

    def decode(self, tokens: list[str]) -> symusic.Score:
        """The blog's rendering: a quarter note per token, chords as pitch classes in octave 4."""
        score = symusic.Score(DECODE_TPQ)
        track = symusic.Track("Piano", 0, False)
        time = 0
        for token in tokens:
            pitches = _token_pitches(token)
            if not pitches:
                continue  # unknown token: skipped, it takes no time
            for pitch in pitches:
                track.notes.append(symusic.Note(time, DECODE_TPQ, pitch, DECODE_VELOCITY))
            time += DECODE_TPQ
        score.tracks.append(track)
        return score

    def transpose_token(self, token: str, semitones: int) -> str | None:
        """Notes move and are respelled; chords move their pitch classes, in normal order again
        (which is what encoding the transposed music gives: symmetric sets reorder)."""
        if CHORD_PATTERN.fullmatch(token):
            moved = [(int(pc) + semitones) % 12 for pc in token.split(".")]
            return ".".join(str(pc) for pc in normal_order(moved))
        midi = parse_pitch_name(token)
        if midi is None:
            return token
        return pitch_name(midi + semitones) if 0 <= midi + semitones <= 127 else None

    def base_vocabulary(self) -> list[str]:
        """None: the seed's vocabulary is whatever names and chords the data holds."""
        return []


def _token_pitches(token: str) -> list[int]:
    """MIDI pitches a token renders as; empty for anything that is not a seed token."""
    if not isinstance(token, str):
        return []
    if CHORD_PATTERN.fullmatch(token):
        classes = [int(part) for part in token.split(".")]
        if any(pc > 11 for pc in classes):
            return []
        return [60 + pc for pc in dict.fromkeys(classes)]
    midi = parse_pitch_name(token)
    return [] if midi is None else [midi]
