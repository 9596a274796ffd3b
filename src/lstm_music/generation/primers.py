"""Primers for generation: the start of a user's MIDI file, or a window of a training corpus."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lstm_music.errors import LstmMusicError
from lstm_music.model.checkpoint import Checkpoint, check_corpus_fits


def midi_primer(path: str | Path, checkpoint: Checkpoint, max_tokens: int) -> list[str]:
    """The last `max_tokens` tokens of a MIDI file, read the way the model's corpus was."""
    from lstm_music.tokens.midi import MidiError, load_pieces, options_like, read_file

    tokenizer = checkpoint.tokenizer()
    options = options_like(checkpoint.corpus_config, tokenizer.timed)
    try:
        pieces = load_pieces(read_file(Path(path)), options)
    except MidiError as error:
        raise LstmMusicError(f"primer {path}: {error}") from error
    known = set(checkpoint.vocabulary)
    tokens = [token for token in tokenizer.encode(pieces[0][1]) if token in known]
    if not _has_notes(tokenizer, tokens):
        raise LstmMusicError(f"primer {path} has no notes this model's tokenizer can read "
                             "(pitches outside its range, or only drums?)")  # fmt: skip
    kept = tokens[-max_tokens:] if max_tokens > 0 else tokens
    if not _has_notes(tokenizer, kept):
        raise LstmMusicError(f"primer {path}: its last {len(kept)} tokens hold no notes, only the "
                             "silence after its last note (more primer tokens reach them, or trim "
                             "the file)")  # fmt: skip
    return kept


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

    corpus = Corpus.load(corpus_path)
    check_corpus_fits(checkpoint, corpus, same_ids=False)  # tokens are looked up by name
    pieces = corpus.split("train") or corpus.pieces
    rng = np.random.default_rng(seed)
    piece = pieces[int(rng.integers(len(pieces)))]
    start = int(rng.integers(max(1, len(piece.ids) - length + 1)))
    return piece.tokens[start : start + length]
