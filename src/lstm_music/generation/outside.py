"""Notes outside the hard constraints, counted on a score as written: the proof that masks.py
holds (benchmarks/constraints.py, the tests), independent of how the tokens were masked."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lstm_music.generation.masks import DRUMS, parse_instruments, parse_key, parse_pitch_range

if TYPE_CHECKING:
    from lstm_music.generation.sampling import SamplingOptions


def notes_outside(score: Any, options: SamplingOptions, primer: Any = None) -> int:
    """Notes of `score` (a symusic Score) that break the hard constraints of `options`: a
    pitched note outside the range or the strict key, a track of an instrument not asked
    (drums: -1). A `primer` score's notes are the user's and are not counted."""
    low, high = parse_pitch_range(options.pitch_range) if options.pitch_range else (0, 127)
    classes = parse_key(options.key).pitch_classes if options.key_strict else range(12)
    programs = parse_instruments(options.instruments) if options.instruments else None
    kept: dict[tuple, int] = {}
    for track in primer.tracks if primer is not None else []:
        for note in track.notes:
            key = (track.is_drum, track.program, note.time, note.pitch)
            kept[key] = kept.get(key, 0) + 1
    outside = 0
    for track in score.tracks:
        program = DRUMS if track.is_drum else track.program
        for note in track.notes:
            key = (track.is_drum, track.program, note.time, note.pitch)
            if kept.get(key, 0):
                kept[key] -= 1
                continue
            pitched = not track.is_drum
            wrong_pitch = pitched and not (low <= note.pitch <= high and note.pitch % 12 in classes)
            outside += wrong_pitch or (programs is not None and program not in programs)
    return outside
