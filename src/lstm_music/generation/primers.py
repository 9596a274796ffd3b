"""Primers for generation: the end of a user's MIDI file or of a phrase played to the model, or a
window of a training corpus. A file and a phrase are read into pieces the way the model's corpus
read its files (`options_like`), then tokens by one path (`primer_end`), whose result a server
keeps for an uploaded primer (`PrimerEnd`) instead of reading the file for every request."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import symusic

from lstm_music.errors import LstmMusicError

if TYPE_CHECKING:  # the web schema reads PLAYED_TEMPO at start-up, before torch is wanted
    from lstm_music.model.checkpoint import Checkpoint

PLAYED_TPQ = 480  # ticks per quarter of a played phrase's score
PLAYED_TEMPO = 120.0  # quarter notes a minute, when a phrase comes without a tempo
BAR_TOKEN = "Bar_None"  # REMI's bar line
CUT_NOTES = 2  # a long primer's end is tokenized from this many notes per token kept, and twice


def midi_primer(path: str | Path, checkpoint: Checkpoint, max_tokens: int) -> list[str]:
    """The last `max_tokens` tokens of a MIDI file, read the way the model's corpus was."""
    return midi_primer_end(path, checkpoint, max_tokens).last(checkpoint, max_tokens)


def midi_primer_end(
    path: str | Path, checkpoint: Checkpoint, reach: int, label: str = ""
) -> PrimerEnd:
    """`primer_end` of a MIDI file: what any primer of up to `reach` tokens takes from it, to
    keep (a server reads an upload once per model, not once per request); errors start with
    `label` ("primer PATH" by default)."""
    from lstm_music.tokens.midi import MidiError, read_file, read_score

    label = label or f"primer {path}"
    try:
        score = read_score(read_file(Path(path)))
    except MidiError as error:
        raise LstmMusicError(f"{label}: {error}") from error
    return primer_end(score, checkpoint, reach, label)


def score_primer(
    score: symusic.Score, checkpoint: Checkpoint, max_tokens: int, label: str = "the primer"
) -> list[str]:
    """`midi_primer` for a score already made (a played phrase): read the way the model's
    corpus was (its tracks chosen, silences capped); errors start with `label`. Changes
    `score` in place."""
    return primer_end(score, checkpoint, max_tokens, label).last(checkpoint, max_tokens)


def primer_end(
    score: symusic.Score, checkpoint: Checkpoint, reach: int, label: str = "the primer"
) -> PrimerEnd:
    """The score's last `reach` tokens (0: all) that the model knows, read the way its corpus
    was, and whether its tokens hold notes at all: all that a primer of up to `reach` tokens
    uses. Changes `score` in place."""
    from lstm_music.tokens.midi import MidiError, options_like, score_pieces

    tokenizer = checkpoint.tokenizer()
    options = options_like(checkpoint.corpus_config, tokenizer.timed)
    try:
        pieces, _ = score_pieces(score, options)
    except MidiError as error:
        raise LstmMusicError(f"{label}: {error}") from error
    known = set(checkpoint.vocabulary)
    end = _end_tokens(pieces[0][1], tokenizer, known, reach)
    if end is not None and _has_notes(tokenizer, end):
        return PrimerEnd(tuple(end), reach, True, label)
    tokens = [token for token in tokenizer.encode(pieces[0][1]) if token in known]
    end = tokens[-reach:] if reach > 0 else tokens
    # decoding the end is enough when it has notes (the whole then has them too)
    readable = _has_notes(tokenizer, end) or _has_notes(tokenizer, tokens)
    return PrimerEnd(tuple(end), reach, readable, label)


def _end_tokens(piece: symusic.Score, tokenizer, known: set[str], reach: int) -> list[str] | None:
    """The last `reach` known tokens of a long piece without tokenizing all of it (a primer of
    199,000 notes took 4 s and more): its end is cut at a bar line and tokenized, twice, from
    CUT_NOTES and from twice as many notes before its end; when both give the same last
    tokens, they are the whole piece's. None for a short piece or when they differ (or
    cannot be compared): the whole is tokenized then."""
    times = [track.notes.numpy()["time"] for track in piece.tracks if len(track.notes)]
    onsets = np.sort(np.concatenate(times)) if times else np.zeros(0, dtype=np.int64)
    ends = []
    for notes in (CUT_NOTES * reach, 2 * CUT_NOTES * reach):
        start = _bar_line_before(piece, int(onsets[-notes])) if 0 < notes < len(onsets) else 0
        if reach <= 0 or start <= 0:
            return None
        cut = piece.clip(start, piece.end() + 1, clip_end=False).shift_time(-start)
        tokens = [token for token in tokenizer.encode(cut) if token in known]
        if len(tokens) <= reach:
            return None
        ends.append(tokens[-reach:])
    return ends[0] if ends[0] == ends[1] else None


def _bar_line_before(piece: symusic.Score, tick: int) -> int:
    """The latest tick at or before `tick` that starts a bar both under the piece's time
    signature and in 4/4 (a tokenizer may read either); 0 when the piece changes its time
    signature (bars after a change may be counted otherwise) or there is none."""
    signatures = piece.time_signatures
    if len(signatures) > 1 or (len(signatures) == 1 and signatures[0].time != 0):
        return 0
    numerator, denominator = (signatures[0].numerator, signatures[0].denominator) if len(
        signatures) else (4, 4)  # fmt: skip
    bar = piece.tpq * 4 * numerator // denominator
    if bar <= 0 or piece.tpq * 4 * numerator % denominator:
        return 0
    step = math.lcm(bar, 4 * piece.tpq)
    return tick // step * step


@dataclass(frozen=True)
class PrimerEnd:
    """The end of a primer's tokens for one model, and whether they hold notes (`primer_end`):
    `last(n)` gives the primer of n <= `reach` tokens without reading the file again."""

    tokens: tuple[str, ...]  # the last `reach` tokens the model knows (all of them for 0)
    reach: int
    readable: bool  # the primer's tokens hold notes (all of them, not only these)
    label: str  # what errors start with

    def covers(self, max_tokens: int) -> bool:
        """Whether `last(max_tokens)` can be given (0 and below: all the tokens)."""
        return self.reach <= 0 or 0 < max_tokens <= self.reach

    def last(self, checkpoint: Checkpoint, max_tokens: int) -> list[str]:
        """The last `max_tokens` tokens (0: all); they must hold notes."""
        if not self.covers(max_tokens):
            raise ValueError(f"{max_tokens} primer tokens asked of an end of {self.reach}")
        if not self.readable:
            raise LstmMusicError(f"{self.label} has no notes this model's tokenizer can read "
                                 "(pitches outside its range, or only drums?)")  # fmt: skip
        kept = list(self.tokens[-max_tokens:] if max_tokens > 0 else self.tokens)
        if not _has_notes(checkpoint.tokenizer(), kept):
            raise LstmMusicError(f"{self.label}: its last {len(kept)} tokens hold no notes, only "
                                 "the silence after its last note (more primer tokens reach "
                                 "them, or trim the file)")  # fmt: skip
        return kept


def reading_key(checkpoint: Checkpoint) -> str:
    """What a primer's tokens depend on (tokenizer, corpus reading, vocabulary), as a digest:
    models that read primers alike share a kept `PrimerEnd`."""
    import hashlib
    import json

    parts = [checkpoint.tokenizer_config, checkpoint.corpus_config, checkpoint.vocabulary]
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class PlayedNote:
    """A note as a person played it: times in seconds from the start of the recording."""

    pitch: int
    start: float
    duration: float
    velocity: int
    program: int = 0  # General MIDI program, DRUM_PROGRAM (-1) for drums


def played_score(notes: Sequence[PlayedNote], tempo: float = PLAYED_TEMPO) -> symusic.Score:
    """Played notes as a score in ticks at `tempo` (quarter notes a minute), so that it plays
    at the seconds they were played; one track per program, drums on General MIDI's channel.

    The tempo only sets where the bars fall: a model reads the phrase in beats, and a MIDI
    file of it shows bars a person can follow."""
    from lstm_music.tokens.instruments import DRUM_PROGRAM, instrument_name

    score = symusic.Score(PLAYED_TPQ)
    score.tempos.append(symusic.Tempo(0, float(tempo)))
    ticks_per_second = tempo / 60 * PLAYED_TPQ
    tracks: dict[int, symusic.Track] = {}
    for note in sorted(notes, key=lambda n: (n.start, n.pitch)):
        if note.program not in tracks:
            drum = note.program == DRUM_PROGRAM
            name = instrument_name(note.program)
            tracks[note.program] = symusic.Track(name, 0 if drum else note.program, drum)
        start = round(note.start * ticks_per_second)
        duration = max(1, round(note.duration * ticks_per_second))
        tracks[note.program].notes.append(symusic.Note(start, duration, note.pitch, note.velocity))
    score.tracks.extend(tracks.values())
    return score


def phrase_primer(
    notes: Sequence[PlayedNote], tempo: float, checkpoint: Checkpoint, max_tokens: int
) -> list[str]:
    """A played phrase's last `max_tokens` tokens (0: all), as a MIDI primer's would be (a phrase is
    read like a file: leading silence cut, long gaps shortened).

    An answer starts after the phrase: with tokens that have bar lines (REMI), the phrase's
    tokens end with one, so the model begins in the next bar rather than adding notes to the
    phrase's last beat."""
    if not notes:
        raise LstmMusicError("the played phrase has no notes")
    score = played_score(notes, tempo)
    if BAR_TOKEN not in checkpoint.vocabulary:
        return score_primer(score, checkpoint, max_tokens, "the played phrase")
    kept = max_tokens - 1 if max_tokens > 1 else max_tokens  # 0 (all) stays all
    tokens = score_primer(score, checkpoint, kept, "the played phrase")
    return tokens + [BAR_TOKEN]


def _has_notes(tokenizer, tokens: list[str]) -> bool:
    """Whether the tokens decode to at least one note (timing and meta tokens alone do not)."""
    try:
        return bool(tokens) and tokenizer.decode(tokens).note_num() > 0
    except LstmMusicError:
        return False


def corpus_primer(
    corpus_path: str | Path, checkpoint: Checkpoint, length: int, seed: int | None
) -> list[str]:
    """A random window of `length` tokens from the corpus's training pieces (the blog's primer)."""
    from lstm_music.corpus.store import Corpus
    from lstm_music.model.checkpoint import check_corpus_fits

    corpus = Corpus.load(corpus_path)
    check_corpus_fits(checkpoint, corpus, same_ids=False)  # tokens are looked up by name
    pieces = corpus.split("train") or corpus.pieces
    rng = np.random.default_rng(seed)
    piece = pieces[int(rng.integers(len(pieces)))]
    start = int(rng.integers(max(1, len(piece.ids) - length + 1)))
    return piece.tokens[start : start + length]
