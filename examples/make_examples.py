"""Write the small example corpus in examples/midi/: public-domain tunes with a simple left hand.

The files are committed; this script documents where they come from and rebuilds them:
    python examples/make_examples.py
"""

from __future__ import annotations

from pathlib import Path

import symusic

# (name, tempo, melody as (MIDI pitch or None for a rest, beats), chords as (root, beats))
TUNES = {
    "ode_to_joy": (
        120,
        [(64, 1), (64, 1), (65, 1), (67, 1), (67, 1), (65, 1), (64, 1), (62, 1), (60, 1), (60, 1),
         (62, 1), (64, 1), (64, 1.5), (62, 0.5), (62, 2)] * 2,
        [(48, 4), (43, 4), (48, 4), (43, 4)] * 2,
    ),
    "twinkle": (
        100,
        [(60, 1), (60, 1), (67, 1), (67, 1), (69, 1), (69, 1), (67, 2), (65, 1), (65, 1), (64, 1),
         (64, 1), (62, 1), (62, 1), (60, 2)] * 2,
        [(48, 4), (53, 2), (48, 2), (53, 2), (48, 2), (43, 2), (48, 2)] * 2,
    ),
    "frere_jacques": (
        110,
        [(60, 1), (62, 1), (64, 1), (60, 1)] * 2 + [(64, 1), (65, 1), (67, 2)] * 2
        + [(67, 0.5), (69, 0.5), (67, 0.5), (65, 0.5), (64, 1), (60, 1)] * 2
        + [(60, 1), (55, 1), (60, 2)] * 2,
        [(48, 4)] * 8,
    ),
    "amazing_grace": (
        80,
        [(None, 2), (55, 1), (60, 2), (64, 0.5), (60, 0.5), (64, 2), (62, 1), (60, 2), (57, 1),
         (55, 2), (55, 1), (60, 2), (64, 0.5), (60, 0.5), (64, 2), (62, 1), (67, 3)],
        [(48, 3), (48, 3), (48, 3), (53, 3), (48, 3), (48, 3), (48, 3), (43, 3)],
    ),
    "greensleeves": (
        90,
        [(57, 1), (60, 2), (62, 1), (64, 1.5), (65, 0.5), (64, 1), (62, 2), (59, 1), (55, 1.5),
         (57, 0.5), (59, 1), (60, 2), (57, 1), (57, 1.5), (56, 0.5), (57, 1), (59, 2), (56, 1),
         (52, 2)],
        [(45, 3), (48, 3), (43, 3), (40, 3), (45, 3), (45, 3), (40, 3), (40, 3)],
    ),
}


def tune_score(tempo: float, melody: list, chords: list, tpq: int = 480) -> symusic.Score:
    """Right hand: the melody; left hand: a major or minor triad per chord, held."""
    score = symusic.Score(tpq)
    score.tempos.append(symusic.Tempo(0, float(tempo)))
    right, left = symusic.Track("right hand", 0, False), symusic.Track("left hand", 0, False)
    time = 0
    for pitch, beats in melody:
        length = int(beats * tpq)
        if pitch is not None:
            right.notes.append(symusic.Note(time, length - tpq // 16, pitch, 90))
        time += length
    time = 0
    minor_roots = {45, 40, 52}  # A and E minor in greensleeves
    for root, beats in chords:
        length = int(beats * tpq)
        third = 3 if root in minor_roots else 4
        for offset in (0, third, 7):
            left.notes.append(symusic.Note(time, length - tpq // 16, root + offset, 65))
        time += length
    score.tracks.extend([right, left])
    return score


def main() -> None:
    folder = Path(__file__).parent / "midi"
    folder.mkdir(exist_ok=True)
    for name, (tempo, melody, chords) in TUNES.items():
        tune_score(tempo, melody, chords).dump_midi(str(folder / f"{name}.mid"))
        print(folder / f"{name}.mid")


if __name__ == "__main__":
    main()
