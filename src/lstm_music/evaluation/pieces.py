"""The pieces an evaluation compares, as notes: generated MIDI files read the way `prepare`
reads its inputs, and a corpus split decoded by its own tokenizer (so both sides went through
the same tokens: raw MIDI against decoded tokens differs in ways no model controls)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lstm_music.errors import LstmMusicError
from lstm_music.evaluation.statistics import Notes, notes_of


@dataclass(frozen=True)
class NoteSequence:
    """A named piece: a generated file, or a reference corpus piece."""

    name: str
    notes: Notes = field(repr=False)


def load_generated(inputs: Sequence[str | Path], options=None) -> list[NoteSequence]:
    """MIDI files and folders -> cleaned one-track pieces, as `prepare` reads its inputs.

    In natural order of their names (piece-2 before piece-10), as a person lists them.
    `options` (TrackOptions): how the reference corpus read its files; None: the defaults.
    """
    from lstm_music.corpus.discover import find_midi_files
    from lstm_music.tokens.midi import TrackOptions, load_pieces, read_file

    files, _ = find_midi_files(list(inputs))
    files.sort(key=lambda found: natural_key(found.source))
    if not files:
        raise LstmMusicError(f"no MIDI files (.mid, .midi) in {', '.join(map(str, inputs))}")
    pieces = []
    for found in files:
        try:
            loaded = load_pieces(read_file(found.path), options or TrackOptions())
        except LstmMusicError as error:
            raise LstmMusicError(f"{found.path}: {error}") from error
        for label, score in loaded:
            pieces.append(
                NoteSequence(found.source + (f" ({label})" if label else ""), notes_of(score))
            )
    return pieces


def natural_key(name: str) -> list[str | int]:
    """Sort key putting piece-2 before piece-10: digit runs compare as numbers, text unfolded."""
    parts = re.split(r"(\d+)", name)  # text, digits, text, ...: the types line up in comparisons
    return [int(part) if i % 2 else part.casefold() for i, part in enumerate(parts)]


def load_reference(corpus, split: str, progress: bool = False) -> list[NoteSequence]:
    """A corpus split's pieces decoded by the corpus's tokenizer; pieces without notes dropped."""
    from tqdm import tqdm

    tokenizer = corpus.tokenizer()
    pieces = []
    for piece in tqdm(corpus.split(split), desc=f"decode {split}", disable=not progress):
        notes = notes_of(tokenizer.decode(piece.tokens))
        if len(notes):
            name = piece.source + (f" ({piece.info.label})" if piece.info.label else "")
            pieces.append(NoteSequence(name, notes))
    return pieces


__all__ = ["NoteSequence", "load_generated", "load_reference", "natural_key"]
