"""Transposition of token ids: a whole piece moved by some semitones, as an id -> id lookup.

Training augments pieces with it (the `transpose` setting) and evaluation can score the shifted
pieces too. A tokenizer says how one token moves (`transpose_token`); here that becomes one
table per shift, so a piece moves with one numpy lookup, and a piece is moved only as far as
every one of its tokens stays in the vocabulary. Drum notes (track mode `instruments`) have
token kinds of their own, which `transpose_token` leaves as they are: a drum sound never moves.
"""

from __future__ import annotations

import numpy as np


def transpose_tables(
    vocabulary: list[str], tokenizer, low: int, high: int
) -> dict[int, np.ndarray]:
    """Per shift, an id -> id lookup; ids whose transposition leaves the range map to -1."""
    index = {token: i for i, token in enumerate(vocabulary)}
    tables = {}
    for shift in range(low, high + 1):
        if shift == 0:
            continue
        moved = (tokenizer.transpose_token(token, shift) for token in vocabulary)
        tables[shift] = np.array([index.get(t, -1) if t else -1 for t in moved], dtype=np.int64)
    return tables


def allowed_shifts(
    pieces: list[np.ndarray], tables: dict[int, np.ndarray], low: int, high: int
) -> list[tuple[int, int]]:
    """Per piece, the widest [low, high] range of shifts keeping every token in the vocabulary."""
    ranges = []
    for ids in pieces:
        unique = np.unique(ids)
        ok = {s: bool((tables[s][unique] >= 0).all()) for s in tables}
        ok[0] = True
        down = 0
        while down - 1 >= low and ok.get(down - 1):
            down -= 1
        up = 0
        while up + 1 <= high and ok.get(up + 1):
            up += 1
        ranges.append((down, up))
    return ranges
