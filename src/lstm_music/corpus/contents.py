"""What a corpus holds besides its counts: its instruments, and where tracks were merged.

A corpus of `--tracks instruments` has a MidiTok `Program` token before every note (see
`tokens.instruments.PROGRAM_SETTINGS`), so counting those tokens counts each instrument's notes
exactly, with no file read again. Tracks that share one instrument (a melody and its
accompaniment both on piano) become one stream; the manifest says so per file ("trimmed",
"merged_tracks"), and these totals say it for the corpus.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np

from lstm_music.tokens.instruments import DRUM_PROGRAM, instrument_name

PROGRAM_TOKEN = re.compile(r"Program_(-?\d{1,3})")  # no 5,000-digit int() of a damaged one


def corpus_instruments(
    vocabulary: list[str], token_counts: Callable[[], np.ndarray]
) -> list[dict[str, Any]]:
    """Each instrument a corpus's tokens play, {"program", "name", "notes"}, most notes first
    (drums are program -1); [] for a corpus whose tokens carry no instruments (every track mode
    but instruments, which merge the tracks or keep one). `token_counts` (`Corpus.token_counts`,
    one pass over the tokens) is called only when the vocabulary has instruments."""
    programs = {
        index: int(match.group(1))
        for index, token in enumerate(vocabulary)
        if isinstance(token, str)
        and (match := PROGRAM_TOKEN.fullmatch(token))
        and DRUM_PROGRAM <= int(match.group(1)) <= 127
    }
    if not programs:
        return []
    counts = token_counts()
    found = [
        {"program": program, "name": instrument_name(program), "notes": int(counts[index])}
        for index, program in programs.items()
        if counts[index] > 0
    ]
    return sorted(found, key=lambda item: (-item["notes"], item["program"]))


def merged_tracks(files: list[dict[str, Any]]) -> dict[str, Any]:
    """The corpus's files whose tracks shared an instrument and were merged into one stream:
    {"files": [source, ...], "instruments": [{"program", "name", "files"}, ...]}, the
    instruments by the number of files, most first. A damaged manifest's odd entries are
    passed over: a corpus is an outside input."""
    sources: list[str] = []
    by_program: dict[int, int] = {}
    for entry in files:
        trimmed = entry.get("trimmed") if isinstance(entry, dict) else None
        merged = trimmed.get("merged_tracks") if isinstance(trimmed, dict) else None
        programs = {item.get("program") for item in merged or () if isinstance(item, dict)}
        programs = {p for p in programs if type(p) is int and DRUM_PROGRAM <= p <= 127}
        if not programs:
            continue
        sources.append(str(entry.get("source")))
        for program in programs:
            by_program[program] = by_program.get(program, 0) + 1
    instruments = [
        {"program": program, "name": instrument_name(program), "files": count}
        for program, count in sorted(by_program.items(), key=lambda item: (-item[1], item[0]))
    ]
    return {"files": sources, "instruments": instruments}
