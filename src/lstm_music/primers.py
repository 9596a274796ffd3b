"""Primers for generation: the start of a user's MIDI file, or a window of a training corpus."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lstm_music.checkpoint import Checkpoint
from lstm_music.errors import LstmMusicError


def midi_primer(path: str | Path, checkpoint: Checkpoint, max_tokens: int) -> list[str]:
    """The last `max_tokens` tokens of a MIDI file, read the way the model's corpus was."""
    from lstm_music.midi import MidiError, TrackOptions, load_pieces, read_file

    corpus_config = checkpoint.corpus_config
    options = TrackOptions(
        mode="merge",
        drums=bool(corpus_config.get("drums", False)),
        max_silence=float(corpus_config.get("max_silence", 8.0)),
    )
    try:
        pieces = load_pieces(read_file(Path(path)), options)
    except MidiError as error:
        raise LstmMusicError(f"primer {path}: {error}") from error
    tokens = checkpoint.tokenizer().encode(pieces[0][1])
    known = set(checkpoint.vocabulary)
    tokens = [token for token in tokens if token in known]
    if not tokens:
        raise LstmMusicError(f"primer {path} has no notes this model's tokenizer can read")
    return tokens[-max_tokens:] if max_tokens > 0 else tokens


def corpus_primer(
    corpus_path: str | Path, checkpoint: Checkpoint, length: int, seed: int | None
) -> list[str]:
    """A random window of `length` tokens from the corpus's training pieces (the blog's primer)."""
    from lstm_music.corpus import Corpus

    corpus = Corpus.load(corpus_path)
    if corpus.tokenizer_config != checkpoint.tokenizer_config:
        raise LstmMusicError(
            f"{corpus_path} uses {corpus.tokenizer_config.get('tokenizer')!r} tokens with other "
            f"settings than this model ({checkpoint.tokenizer_config.get('tokenizer')!r})"
        )
    pieces = corpus.split("train") or corpus.pieces
    rng = np.random.default_rng(seed)
    piece = pieces[int(rng.integers(len(pieces)))]
    start = int(rng.integers(max(1, len(piece.ids) - length + 1)))
    return piece.tokens[start : start + length]
