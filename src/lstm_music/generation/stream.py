"""`PieceStream`: one piece written as `generate` writes it, handed out as its notes become final.

Generation is far faster than playing, so a listener can hear a piece while it is written. The
stream runs `generate`'s own loop (`Generation`: same chunks, same random draws, so a seed gives
the same piece) and decodes the tokens so far every few dozen tokens. A note is handed out once,
when nothing later can change it, in start order:

- REMI can go back in time within a bar (a Position token earlier than the last), never before
  the last Bar token's bar line: the notes written before that token and starting before that
  line are final (a Position past the bar's end lands a note later). A probe note after the
  Bar token, in a copy of the tokens, shows where the bar line is.
- TSD, Structured and the seed's tokens only move forward and write a note's duration with it:
  the notes starting before the last onset are final.
- The grid and MIDI-like tokens end a note later (a step without it, a NoteOff): a note is final
  once the last onset is past its end as well, and nothing still sounding started before it
  (MIDI-like: a note without its NoteOff yet is not in the decode; NoteOffs appended to a copy
  of the tokens show where the open ones start).

Times are seconds on the piece's timeline (the primer's notes included, never handed out), cut
at the asked length and the cap as the finished piece is. `should_stop` is asked between steps
of at most `CHECK_EVERY` tokens: a stream nobody listens to stops within milliseconds.

The first notes are what a listener waits for: until they are out, the steps are `FIRST_STEPS`
tokens and the tokens are decoded after each (REMI: once a bar is complete, the first moment a
note of it is final); then every few dozen tokens, fewer decodes the longer the piece.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import symusic

from lstm_music.errors import SettingError
from lstm_music.generation.generate import GeneratedPiece, Generation, start_generation
from lstm_music.generation.primers import BAR_TOKEN  # REMI's: time never goes back past it
from lstm_music.generation.sampling import SamplingOptions
from lstm_music.model.checkpoint import Checkpoint
from lstm_music.tokens.instruments import instrument_of
from lstm_music.tokens.timing import tempo_map, tick_seconds

CHECK_EVERY = 32  # tokens between two looks at should_stop, and between decodes at first
FIRST_STEPS = 16  # the same until the first notes are out (a step costs ~1 ms besides tokens)
MAX_DECODE_EVERY = 256  # tokens between two decodes at most (a decode reads the whole prefix)
FORWARD_WHOLE = ("tsd", "structured", "seed")  # time moves forward; a note's tokens hold it all
OPEN_NOTES_PER_PITCH = 4  # MIDI-like notes of one pitch open at once that a probe closes


@dataclass(frozen=True)
class StreamedNote:
    """A final note of the piece: seconds on its timeline, program -1 for drums."""

    pitch: int
    start: float
    duration: float
    velocity: int
    program: int


@dataclass(frozen=True)
class NoteBatch:
    """Notes that just became final, in start order; no later note starts before
    `written_seconds`."""

    notes: list[StreamedNote]
    written_seconds: float


Key = tuple[int, int, int, int, int]  # start tick, end tick, pitch, velocity, program


class PieceStream:
    """One piece (`options.num` must be 1), its notes in batches as they become final.

    `for batch in stream: ...`; then `stream.piece` is the finished `GeneratedPiece`, the very
    one `generate(checkpoint, options)` returns, or None when `should_stop` stopped it. The
    options are checked against the model when the stream is made, before any note."""

    def __init__(
        self,
        checkpoint: Checkpoint | str | Path,
        options: SamplingOptions,
        should_stop: Callable[[], bool] | None = None,
    ) -> None:
        if options.num != 1:
            raise SettingError("a stream writes one piece: num must be 1", "num")
        self.generation: Generation = start_generation(checkpoint, options)
        self.should_stop = should_stop or (lambda: False)
        self.piece: GeneratedPiece | None = None
        plan = self.generation.plan
        self._rule = plan.tokenizer.name
        self._bar_id = plan.vocabulary.index(BAR_TOKEN) if BAR_TOKEN in plan.vocabulary else -1
        self._probe = _probe_ids(plan.vocabulary, self._rule)
        primer = self.generation.decode().score  # no new tokens yet: the primer alone
        limit = self.generation.limit_tick(primer)
        self._primer = Counter(_identity(key) for key in _keys(primer, limit).elements())
        self.primer_seconds = _seconds(primer, [primer.end()])[0] if self._primer else 0.0
        self.tempo = float(options.tempo or _opening_tempo(primer))
        self._sent: Counter[Key] = Counter()
        self._written = 0.0

    def __iter__(self) -> Iterator[NoteBatch]:
        generation, since = self.generation, 0
        while not generation.done:
            steps = generation.next_steps()
            while steps > 0:
                if self.should_stop():
                    return
                part = min(steps, CHECK_EVERY if self._sent else FIRST_STEPS)
                generation.advance(part)
                steps, since = steps - part, since + part
                if steps > 0 and self._worth_decoding(since):
                    since, batch = 0, self._final_notes(None)
                    if batch.notes:
                        yield batch
            decoded = generation.decode()  # the chunk's end: as generate decodes it
            generation.measure([decoded])
            since, batch = 0, self._final_notes(decoded.score)
            if batch.notes:
                yield batch
        if self.should_stop():
            return
        self.piece = generation.finish()[0]
        last = self._batch(self.piece.score)
        self._written = self.piece.seconds
        yield NoteBatch(last.notes, self._written)

    def _worth_decoding(self, since: int) -> bool:
        """Whether to decode now, `since` tokens after the last decode: before the first notes
        at every step, then every `_decode_every` tokens; with REMI only once a bar line (a Bar
        token after the first token) came since, as nothing before it is final until then."""
        if self._rule == "remi":
            if not self._probe:  # bar lines cannot be placed: the notes wait for the chunk's end
                return False
            recent = self.generation.new[0, max(1, self.generation.new.shape[1] - since) :]
            if not (recent == self._bar_id).any():
                return False
        return not self._sent or since >= self._decode_every()

    def _decode_every(self) -> int:
        """Tokens between decodes once notes are out: more as the piece (and a decode) grows."""
        return min(MAX_DECODE_EVERY, max(CHECK_EVERY, self.generation.new.shape[1] // 8))

    def _final_notes(self, score: symusic.Score | None) -> NoteBatch:
        """The notes that no later token can change, from the tokens so far (`score`: their
        decode when the caller has it)."""
        generation = self.generation
        if self._rule == "remi":
            return self._before_last_bar()
        score = score if score is not None else generation.decode().score
        frontier = max(_raw_notes(score), default=(0,))[0]  # the last onset
        if self._probe:  # MIDI-like: a note still open is not in the decode, yet starts earlier
            closed = generation.decode(then=self._probe).score  # every open note ended now
            plain, probed = _raw_notes(score), _raw_notes(closed)
            frontier = min([frontier, *(key[0] for key in (probed - plain) + (plain - probed))])
        return self._batch(score, frontier, whole=self._rule in FORWARD_WHOLE)

    def _before_last_bar(self) -> NoteBatch:
        """REMI: the notes written before the last Bar token that start before its bar line
        (a Position past the bar's length lands a note in a later bar, after notes of the
        bars between). The bar line's tick is where a probe note after the Bar token lands."""
        generation, waiting = self.generation, NoteBatch([], self._written)
        bars = np.flatnonzero(generation.new[0] == self._bar_id)
        if not len(bars) or not self._probe:
            return waiting
        before = generation.decode(length=int(bars[-1])).score
        probed = generation.decode(length=int(bars[-1]) + 1, then=self._probe).score
        probe = list((_raw_notes(probed) - _raw_notes(before)).elements())
        if len(probe) != 1:  # the decoder did not take the probe: wait for the end
            return waiting
        return self._batch(before, probe[0][0])

    def _batch(
        self, score: symusic.Score, frontier: int | None = None, whole: bool = True
    ) -> NoteBatch:
        """The new notes of `score` not sent yet, in start order; with a `frontier` (a tick no
        later note starts before) only those starting before it, and unless `whole` (a note's
        tokens hold its duration) ending before it, up to the first that is not final."""
        limit = self.generation.limit_tick(score)
        frontier = None if frontier is None else min(frontier, limit)  # nothing past the end
        primer = self._primer.copy()
        fresh = []
        for key in sorted((_keys(score, limit) - self._sent).elements()):
            if primer[_identity(key)] > 0:  # a primer note: never sent
                primer[_identity(key)] -= 1
            else:
                fresh.append(key)
        ready = fresh
        if frontier is not None:
            final = [key[0] < frontier and (whole or key[1] < frontier) for key in fresh]
            ready = fresh[: final.index(False) if False in final else len(fresh)]
        self._sent.update(ready)
        seconds = _seconds(score, [tick for key in ready for tick in key[:2]])
        notes = [StreamedNote(key[2], round(seconds[2 * i], 4),
                              round(seconds[2 * i + 1] - seconds[2 * i], 4), key[3], key[4])
                 for i, key in enumerate(ready)]  # fmt: skip
        if notes:
            self._written = max(self._written, notes[-1].start)
        if frontier is not None:
            end = fresh[len(ready)][0] if len(ready) < len(fresh) else frontier
            self._written = max(self._written, _seconds(score, [min(end, frontier)])[0])
        return NoteBatch(notes, self._written)


def _raw_notes(score: symusic.Score) -> Counter[tuple[int, int, int, int, int]]:
    """Every note as it is in the score: (start, duration, pitch, velocity, program)."""
    return Counter((n.time, n.duration, n.pitch, n.velocity, instrument_of(track))
                   for track in score.tracks for n in track.notes)  # fmt: skip


def _probe_ids(vocabulary: list[str], rule: str) -> list[int]:
    """Tokens that make the decoder tell where the music stands: for REMI a note at the start
    of a bar (after a Bar token, where its bar line is), for MIDI-like every NoteOff and DrumOff
    (a few times over: a pitch may be open more than once). [] when the vocabulary lacks them."""
    if rule == "midilike":
        offs = [
            i for i, token in enumerate(vocabulary) if token.startswith(("NoteOff_", "DrumOff_"))
        ]
        return offs * OPEN_NOTES_PER_PITCH
    if rule != "remi":
        return []
    kinds = ("Position_0", "Pitch_", "Velocity_", "Duration_")
    found = [
        next((i for i, t in enumerate(vocabulary) if t.startswith(kind)), -1) for kind in kinds
    ]
    return found if min(found) >= 0 and vocabulary[found[0]] == "Position_0" else []


def _identity(key: Key) -> tuple[int, int, int]:
    """What tells a primer note from a new one: its start, pitch and program (a primer note a
    later token lengthens, on the grid, is still the primer's)."""
    return key[0], key[2], key[4]


def _keys(score: symusic.Score, limit: int) -> Counter[Key]:
    """Every note that starts before `limit`, ended there at the latest (as the finished piece
    is cut), as (start, end, pitch, velocity, program) ticks."""
    keys: Counter[Key] = Counter()
    for track in score.tracks:
        program = instrument_of(track)
        for note in track.notes:
            if note.time < limit:
                end = min(note.time + note.duration, limit)
                keys[(note.time, end, note.pitch, note.velocity, program)] += 1
    return keys


def _opening_tempo(score: symusic.Score) -> float:
    """Quarter notes a minute at the score's start, as its seconds are counted (`tempo_map`:
    MIDI's 120 before a first tempo event)."""
    per_tick = tempo_map(score)[2][0]  # seconds a tick
    return 60.0 / (per_tick * score.tpq)


def _seconds(score: symusic.Score, ticks: list[int]) -> list[float]:
    """Seconds at each tick under the score's tempo map."""
    if not ticks:
        return []
    return tick_seconds(tempo_map(score), np.asarray(ticks, dtype=np.float64)).tolist()
