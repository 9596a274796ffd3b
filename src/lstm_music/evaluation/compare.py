"""Did the model copy its training data? Copy detection and musical statistics vs a corpus.

A note event is (onset, pitch); a piece is its notes sorted by onset, then pitch. Between two
consecutive notes we form one *transition* symbol: (previous pitch, pitch, inter-onset interval
on a 1/12-quarter grid), or (pitch interval, inter-onset interval) with `transpose_invariant`.
A run of L matching transitions is a run of L + 1 consecutive notes whose pitches (or pitches
up to one transposition) and timing between them match: the gap before the first note of a
copied excerpt does not count, so an excerpt planted in other music is found at its exact length.

The reference index never compares pieces pairwise. Every window of transitions gets a 64-bit
polynomial hash in O(1) from prefix sums (symbols are scrambled with splitmix64, the base is odd
so it is invertible modulo 2**64 and the hash of a window does not depend on where it lies):

- the share of a piece's 8-note n-grams found in the reference is one sorted-array lookup
  (`np.searchsorted`) per n-gram;
- the longest common run is a binary search on its length: below the n-gram length against
  sorted tables of all reference windows of that length (built once, cached), above it only at
  the reference positions whose n-gram matched (a longer run contains a matching n-gram). The
  match reported is checked symbol by symbol, so a hash collision can never invent one.

Benchmark (2 busy CPU cores, numpy 2.4): 2,000 random reference pieces of 500 notes (a million
notes) indexed in 0.5 s; 20 random 500-note pieces queried in 0.8 s the first time (that builds
the short-window tables) and 5 ms each after; a verbatim 500-note copy found in 6 ms; a corpus of
one repeated scale (every position a candidate, the worst case) queried in 0.25 s.

The verdict: copies found or not (a piece is copied when the share of its n-grams found reaches
the threshold); statistics inside or outside the held-out spread (a statistic is inside when
as many held-out pieces drawn at random: see `lstm_music.evaluation.statistics`); and, resting
on it when it ran, the listening test (`lstm_music.evaluation.listening`) of the generated
pieces against the held-out (valid) pieces; when the valid split is too small for it, the
valid and test pieces together; with no valid pieces, those of the compared split.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lstm_music.errors import LstmMusicError, SettingError
from lstm_music.evaluation.listening import (
    ListeningTest,
    listening_dict,
    listening_test,
    real_refusal,
)
from lstm_music.evaluation.pieces import NoteSequence, load_generated, load_reference
from lstm_music.evaluation.statistics import Notes, StatComparison, compare_statistics
from lstm_music.evaluation.verdict import Verdict, judge, yardstick_warnings

NGRAM = 8  # notes per n-gram
DEFAULT_THRESHOLD = 0.5  # a piece with at least this share of its n-grams found is copied
GRID = 12  # inter-onset intervals are rounded to 1/12 of a quarter note
_BASE = np.uint64(0x9E3779B97F4A7C15)  # odd, hence invertible modulo 2**64
_BASE_INV = np.uint64(pow(int(_BASE), -1, 2**64))
_Pair = tuple[int, int]  # (generated, reference) start positions of a verified match


def transition_codes(notes: Notes, transpose_invariant: bool = False) -> np.ndarray:
    """One int64 symbol per pair of consecutive notes (see the module docstring)."""
    if len(notes) < 2:
        return np.zeros(0, dtype=np.int64)
    ioi = np.clip(np.round(np.diff(notes.onset) * GRID), 0, 2**40).astype(np.int64)
    pitch = np.clip(notes.pitch, 0, 127)
    if transpose_invariant:
        return (ioi << 8) | (np.diff(pitch) + 128)
    return (ioi << 14) | (pitch[:-1] << 7) | pitch[1:]


def _mix(codes: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: symbols -> well-spread 64-bit values."""
    z = codes.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _powers(base: np.uint64, count: int) -> np.ndarray:
    powers = np.full(count, base, dtype=np.uint64)
    powers[:1] = 1
    return np.cumprod(powers)  # wraps modulo 2**64, which is what we want


class _Hashed:
    """Symbols with prefix sums that hash any window in O(1), for many windows at once."""

    def __init__(self, codes: np.ndarray) -> None:
        self.codes = codes
        values = _mix(codes) * _powers(_BASE_INV, len(codes))
        self._prefix = np.zeros(len(codes) + 1, dtype=np.uint64)
        np.cumsum(values, out=self._prefix[1:])
        self._up = _powers(_BASE, len(codes) + 1)

    def __len__(self) -> int:
        return len(self.codes)

    def hashes(self, starts: np.ndarray, length: int) -> np.ndarray:
        """sum_j value[start + j] * BASE**-j for each start: the same wherever the window is."""
        return (self._prefix[starts + length] - self._prefix[starts]) * self._up[starts]


@dataclass(frozen=True)
class CopyMatch:
    """How much of one generated piece is found in the reference."""

    notes: int
    longest_run: int  # consecutive notes also found, in order and timing, in one reference piece
    reference_piece: int | None  # index into the reference pieces of one such run
    reference_note: int | None  # first note of the run there (0-based)
    generated_note: int | None  # first note of the run in the generated piece (0-based)
    ngram_share: float | None  # share of the piece's n-grams found (None: piece too short)
    copied: bool


class ReferenceIndex:
    """All reference pieces' transitions, hashed once; `query` scores one generated piece."""

    def __init__(
        self, pieces: Sequence[Notes], transpose_invariant: bool = False, ngram: int = NGRAM
    ) -> None:
        if ngram < 2:
            raise LstmMusicError("n-grams need at least 2 notes")
        self.transpose_invariant, self.ngram, self._k = transpose_invariant, ngram, ngram - 1
        codes = [transition_codes(p, transpose_invariant) for p in pieces]
        lengths = np.array([len(c) for c in codes], dtype=np.int64)
        self.starts = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        self._seq = _Hashed(np.concatenate(codes) if codes else np.zeros(0, dtype=np.int64))
        self._end = np.repeat(self.starts[1:], lengths)  # end of the piece at each position
        self._pitches = set().union(*(np.unique(p.pitch).tolist() for p in pieces))
        self._tables: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._table(self._k)

    def _table(self, length: int) -> tuple[np.ndarray, np.ndarray]:
        """Sorted hashes of every reference window of `length` transitions, and its positions."""
        if length not in self._tables:
            positions = np.flatnonzero(np.arange(len(self._seq)) + length <= self._end)
            hashes = self._seq.hashes(positions, length)
            order = np.argsort(hashes)
            self._tables[length] = (hashes[order], positions[order])
        return self._tables[length]

    def query(self, notes: Notes, threshold: float = DEFAULT_THRESHOLD) -> CopyMatch:
        seq = _Hashed(transition_codes(notes, self.transpose_invariant))
        share, pair, length = None, None, 0
        if len(seq) >= self._k:
            table, positions = self._table(self._k)
            hashes = seq.hashes(np.arange(len(seq) - self._k + 1), self._k)
            found, left = _lookup(table, hashes)
            share = float(found.mean())
            if found.any():
                starts = _ranges(np.unique(left[found]), table)
                length, pair = self._longest_long(seq, np.flatnonzero(found), positions[starts])
        if pair is None:
            length, pair = self._longest_short(seq)
        return self._match(notes, length, pair, share, threshold)

    def _match(
        self, notes: Notes, length: int, pair: _Pair | None, share: float | None, threshold: float
    ) -> CopyMatch:
        if pair is not None:
            piece = int(np.searchsorted(self.starts, pair[1], side="right") - 1)
            ref_note = int(pair[1] - self.starts[piece])
            return CopyMatch(
                len(notes),
                length + 1,
                piece,
                ref_note,
                int(pair[0]),
                share,
                share is not None and share >= threshold,
            )
        if self.transpose_invariant:
            single = len(notes) > 0 and bool(self._pitches)
        else:
            single = bool(self._pitches.intersection(notes.pitch.tolist()))
        return CopyMatch(len(notes), int(single), None, None, None, share, False)

    def _longest_long(
        self, seq: _Hashed, hits: np.ndarray, candidates: np.ndarray
    ) -> tuple[int, _Pair | None]:
        """Binary search above the n-gram length, only where the n-grams matched."""

        def check(length: int) -> _Pair | None:
            gen = hits[hits + length <= len(seq)]
            ref = candidates[candidates + length <= self._end[candidates]]
            return self._verified(seq, gen, ref, length, self._seq.hashes(ref, length))

        upper = self._k - 1 + _longest_streak(hits)
        best = check(upper)
        if best is not None:
            return upper, best
        low, high, best = self._k, upper - 1, check(self._k)
        while low < high and best is not None:
            middle = (low + high + 1) // 2
            pair = check(middle)
            low, high, best = (middle, high, pair) if pair else (low, middle - 1, best)
        return low, best

    def _longest_short(self, seq: _Hashed) -> tuple[int, _Pair | None]:
        """Binary search below the n-gram length, against whole-reference tables."""
        low, high, best = 0, min(self._k - 1, len(seq)), None
        while low < high:
            middle = (low + high + 1) // 2
            table, positions = self._table(middle)
            starts = np.arange(len(seq) - middle + 1)
            found, left = _lookup(table, seq.hashes(starts, middle))
            ref = positions[_ranges(np.unique(left[found]), table)]
            pair = self._verified(seq, starts[found], ref, middle, None)
            low, high, best = (middle, high, pair) if pair else (low, middle - 1, best)
        return low, best

    def _verified(
        self,
        seq: _Hashed,
        gen: np.ndarray,
        ref: np.ndarray,
        length: int,
        ref_hashes: np.ndarray | None,
    ) -> _Pair | None:
        """A (generated, reference) start pair whose windows really are equal, if any."""
        if not len(gen) or not len(ref):
            return None
        gen_hashes = seq.hashes(gen, length)
        ref_hashes = self._seq.hashes(ref, length) if ref_hashes is None else ref_hashes
        common = np.isin(gen_hashes, ref_hashes)
        for g in gen[common][:16]:
            for r in ref[ref_hashes == seq.hashes(np.array([g]), length)[0]][:16]:
                if np.array_equal(seq.codes[g : g + length], self._seq.codes[r : r + length]):
                    return int(g), int(r)
        return None


def _lookup(table: np.ndarray, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which hashes are in the sorted table, and where their first occurrence is."""
    left = np.searchsorted(table, hashes)
    found = table[np.minimum(left, len(table) - 1)] == hashes if len(table) else left < 0
    return found, left


def _ranges(lefts: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Indices of every table entry equal to table[left] for each left, concatenated."""
    if not len(lefts):
        return np.zeros(0, dtype=np.int64)
    counts = np.searchsorted(table, table[lefts], side="right") - lefts
    offsets = np.repeat(lefts - (np.cumsum(counts) - counts), counts)
    return np.arange(counts.sum()) + offsets


def _longest_streak(sorted_positions: np.ndarray) -> int:
    breaks = np.flatnonzero(np.diff(sorted_positions) != 1)
    bounds = np.concatenate([[-1], breaks, [len(sorted_positions) - 1]])
    return int(np.diff(bounds).max())


@dataclass
class Comparison:
    """Everything `lstm-music compare` reports; `to_dict()` is its JSON."""

    reference: str
    split: str
    threshold: float
    transpose_invariant: bool
    ngram: int
    generated: list[NoteSequence]
    references: list[NoteSequence]
    copies: list[CopyMatch]
    statistics: list[StatComparison]
    warnings: list[str]  # what weakens the figures (a thin yardstick), for the user to see
    copy_seconds: float  # building the index and querying it
    listening: ListeningTest | None = None  # generated vs held-out excerpts (None: not run)

    @property
    def verdict(self) -> Verdict:
        return judge(self)

    def to_dict(self) -> dict[str, Any]:
        settings = ("reference", "split", "threshold", "transpose_invariant", "ngram")
        pieces = []
        for piece, match in zip(self.generated, self.copies):
            where = match.reference_piece
            source = None if where is None else self.references[where].name
            pieces.append({"file": piece.name, **asdict(match), "reference_piece": source})
        return {
            **{name: getattr(self, name) for name in settings},
            "reference_pieces": len(self.references),
            "reference_notes": sum(len(p.notes) for p in self.references),
            "copy_seconds": round(self.copy_seconds, 3),
            "pieces": pieces,
            "statistics": [s.to_dict() for s in self.statistics],
            "warnings": self.warnings,
            "listening_test": None if self.listening is None else listening_dict(self.listening),
            "yardstick_note": self.warnings[0] if self.warnings else None,  # before "warnings"
            "verdict": asdict(self.verdict),
        }


def compare(
    generated: Sequence[str | Path],
    reference: str | Path,
    split: str = "train",
    threshold: float = DEFAULT_THRESHOLD,
    transpose_invariant: bool = False,
    ngram: int = NGRAM,
    progress: bool = False,
) -> Comparison:
    """Copy detection and Yang & Lerch statistics of generated MIDI against a corpus split."""
    from lstm_music.corpus.store import Corpus
    from lstm_music.tokens import tokenizer_class
    from lstm_music.tokens.midi import options_like

    if not 0 < threshold <= 1:
        raise SettingError("the copy threshold must be in (0, 1]", "threshold")
    corpus = Corpus.load(reference)
    config, name = corpus.meta.get("config"), corpus.tokenizer_config["tokenizer"]
    options = options_like(config, tokenizer_class(name).timed) if config else None  # as it read
    pieces = load_generated(generated, options)
    decoded = {name: load_reference(corpus, name, progress) for name in {split, "train", "valid"}}
    references = decoded[split]
    if not references:
        raise LstmMusicError(f"{reference}: the {split} split has no pieces with notes")
    started = time.perf_counter()
    index = ReferenceIndex([p.notes for p in references], transpose_invariant, ngram)
    copies = [index.query(p.notes, threshold) for p in pieces]
    seconds = time.perf_counter() - started
    valid, train = ([p.notes for p in decoded[s]] for s in ("valid", "train"))
    warnings = yardstick_warnings(len(valid), len(train), split)
    stats = compare_statistics(
        [p.notes for p in pieces], [p.notes for p in references], valid, train
    )
    real, real_name = listening_reference(corpus, progress, valid, references, split)
    listened = listening_test(real, [p.notes for p in pieces], real_name=real_name)
    return Comparison(
        str(reference), split, threshold, transpose_invariant, ngram, pieces, references, copies,
        stats, warnings, seconds, listened,
    )  # fmt: skip


def listening_reference(
    corpus, progress: bool, valid: list[Notes], references: list[NoteSequence], split: str
) -> tuple[list[Notes], str]:
    """The real side of the listening test and its name: the valid split; when that is too
    small for the test (a folder of 20 pieces keeps 2), the valid and test splits together, all
    the held-out music there is (compare measures, it chooses nothing); with no valid pieces,
    the reference split."""
    if not valid:
        return [p.notes for p in references], f"{split} split"
    if real_refusal(valid) is None:
        return valid, "valid split"
    held_out = valid + [p.notes for p in load_reference(corpus, "test", progress)]
    if len(held_out) > len(valid) and real_refusal(held_out) is None:
        return held_out, "held-out (valid and test) split"
    return valid, "valid split"
