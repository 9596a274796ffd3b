"""The JSB Chorales benchmark file: MATLAB piano rolls in, one MIDI file per chorale out.

The .mat file (Boulanger-Lewandowski et al. 2012) holds 88-key rolls with one row per quarter
note; we widen them to the 128 MIDI pitches our `grid` tokenizer uses, so the benchmark corpus
goes through exactly the same code path as any folder of MIDI files. Each file carries the grid
tokenizer's frame marker (see `lstm_music.tokens.grid`), so a piece that begins or ends with
silent rows (JSB has none, Nottingham, MuseData and Piano-midi.de do) keeps every row: the corpus
has exactly one `Step` per row of the .mat file, and every row is scored.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lstm_music.errors import LstmMusicError
from lstm_music.tokens.grid import N_PITCHES, roll_to_score

LOWEST_KEY = 21  # column 0 of the 88-key rolls is A0, MIDI pitch 21
N_KEYS = 88
SPLITS = {"train": "traindata", "valid": "validdata", "test": "testdata"}


def load_piano_roll_mat(path: str | Path) -> dict[str, list[np.ndarray]]:
    """{"train"|"valid"|"test": [bool (T, 128) roll per piece]} from a JSB-style .mat file."""
    try:
        from scipy.io import loadmat
    except ImportError:
        raise LstmMusicError(
            "reading .mat piano rolls needs scipy: pip install scipy (or lstm-music[bench])"
        ) from None
    path = Path(path)
    try:
        data = loadmat(path)
    except (OSError, ValueError) as error:
        raise LstmMusicError(f"cannot read {path} as a MATLAB file: {error}") from error
    rolls: dict[str, list[np.ndarray]] = {}
    for split, key in SPLITS.items():
        if key not in data:
            raise LstmMusicError(f"{path} has no {key!r} (expected {', '.join(SPLITS.values())})")
        rolls[split] = [_widen(np.asarray(m), path, key) for m in np.ravel(data[key])]
    return rolls


def _widen(keys: np.ndarray, path: Path, key: str) -> np.ndarray:
    """A (T, 88) key roll as a bool (T, 128) pitch roll."""
    if keys.ndim != 2 or keys.shape[1] != N_KEYS:
        raise LstmMusicError(f"{path}: {key} holds a {keys.shape} matrix, not (steps, {N_KEYS})")
    roll = np.zeros((keys.shape[0], N_PITCHES), dtype=bool)  # (T, 128)
    roll[:, LOWEST_KEY : LOWEST_KEY + N_KEYS] = keys != 0
    return roll


def write_split_midi(
    rolls_by_split: dict[str, list[np.ndarray]], out_dir: str | Path, step: float = 1.0
) -> list[Path]:
    """Write `out_dir/<split>/000.mid`, ... (one per roll, `step` quarters a row); the paths.

    Every file is frame-marked, so `prepare --tokenizer grid` gives back each roll whole.
    """
    paths: list[Path] = []
    for split, rolls in rolls_by_split.items():
        folder = Path(out_dir) / split
        folder.mkdir(parents=True, exist_ok=True)
        for index, roll in enumerate(rolls):
            path = folder / f"{index:03d}.mid"
            roll_to_score(roll, step, mark_frames=True).dump_midi(path)
            paths.append(path)
    return paths
