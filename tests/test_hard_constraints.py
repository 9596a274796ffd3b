"""Hard constraints hold: over random combinations of key, pitch range and instruments, with and
without a primer, on two shipped models, no new note lies outside what was asked, and what
nothing can satisfy is refused in one line before generating (benchmarks/constraints.py runs
the same over 200 combinations)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from lstm_music.generation.generate import generate
from lstm_music.generation.outside import notes_outside
from lstm_music.generation.sampling import SamplingOptions
from lstm_music.model.checkpoint import load_checkpoint
from lstm_music.model.shipped import resolve_checkpoint

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from constraints import measure, programs_model  # noqa: E402


@pytest.mark.parametrize("name", ["bach-chorales", "oneills-1850", "random programs"])
def test_twenty_random_combinations_write_no_note_outside(name: str) -> None:
    checkpoint = (
        programs_model() if name == "random programs" else load_checkpoint(resolve_checkpoint(name))
    )
    counts = measure(checkpoint, combos=20, tokens=120, seed=3)
    assert counts["notes outside"] == 0 and counts["refusals over one line"] == 0, counts
    assert counts["generated"] >= 5 and counts["refused"] >= 1, counts  # both paths were taken


def test_the_issue_cases_are_refused_or_kept() -> None:
    checkpoint = load_checkpoint(resolve_checkpoint("bach-chorales"))
    options = SamplingOptions(tokens=200, seed=1, key="C-major", key_strict=True,
                              pitch_range="60..72")  # fmt: skip
    piece = generate(checkpoint, options)[0]
    assert piece.score.note_num() > 10 and notes_outside(piece.score, options) == 0


def test_notes_outside_counts_what_breaks_and_spares_the_primer() -> None:
    import symusic

    score, primer = symusic.Score(480), symusic.Score(480)
    for target, pitches in ((score, (60, 61, 62, 90)), (primer, (61,))):
        track = symusic.Track(program=0)
        for pitch in pitches:
            track.notes.append(symusic.Note(0, 480, pitch, 80))
        target.tracks.append(track)
    options = SamplingOptions(key="C-major", key_strict=True, pitch_range="48..84")
    assert notes_outside(score, options) == 2  # 61 (not in C major) and 90 (out of range)
    assert notes_outside(score, options, primer) == 1  # the primer's 61 is the user's
    assert notes_outside(score, SamplingOptions(instruments="bass")) == 4  # piano: not asked
