"""Finding MIDI files under the user's inputs, and deciding each file's split.

Symlinks are followed (a music library is often a farm of links) but every folder is entered
once, so a symlink loop ends the walk instead of looping forever.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from lstm_music.errors import LstmMusicError, SettingError

MIDI_SUFFIXES = (".mid", ".midi")
SPLIT_FOLDERS = ("train", "valid", "test")


@dataclass(frozen=True)
class FoundFile:
    """A MIDI file to read: `path` on disk, `source` as stored (relative to its input)."""

    path: Path
    source: str
    folder_split: str | None = None  # train / valid / test when the input has such sub-folders


def _is_midi(name: str) -> bool:
    return name.lower().endswith(MIDI_SUFFIXES)


def _walk(root: Path) -> tuple[list[Path], list[str]]:
    """MIDI files under `root` (sorted) and notes about folders skipped as symlink loops."""
    files: list[Path] = []
    notes: list[str] = []
    seen: set[tuple[int, int]] = set()
    for folder, subfolders, names in os.walk(root, followlinks=True):
        try:
            stat = os.stat(folder)
        except OSError:
            continue
        if (stat.st_dev, stat.st_ino) in seen:
            notes.append(f"{folder}: folder already visited (symlink loop), skipped")
            subfolders.clear()
            continue
        seen.add((stat.st_dev, stat.st_ino))
        subfolders.sort()
        files += [Path(folder) / name for name in sorted(names) if _is_midi(name)]
    return files, notes


def find_midi_files(inputs: list[str | Path]) -> tuple[list[FoundFile], list[str]]:
    """All MIDI files named by or found under `inputs`, each once; and notes on what was skipped.

    Sources are relative to the input folder, prefixed with the folder's name when there are
    several inputs so that they stay distinct.
    """
    if not inputs:
        raise LstmMusicError("no input given: name MIDI files or folders")
    found: dict[str, FoundFile] = {}
    notes: list[str] = []
    several = len(inputs) > 1
    for raw in inputs:
        root = Path(raw).expanduser()
        if not root.exists():
            kind = "broken symlink" if root.is_symlink() else "no such file or folder"
            raise LstmMusicError(f"{raw}: {kind}")
        if not root.is_dir():  # a file; a named pipe or device too, which prepare reports
            found.setdefault(os.path.realpath(root), FoundFile(root, root.name))
            continue
        files, walk_notes = _walk(root)
        notes += walk_notes
        by_folder = (root / "train").is_dir()
        for path in files:
            relative = path.relative_to(root)
            source = str(Path(root.resolve().name) / relative) if several else str(relative)
            split = None
            if by_folder:
                first = relative.parts[0] if len(relative.parts) > 1 else ""
                split = first if first in SPLIT_FOLDERS else "train"
            found.setdefault(os.path.realpath(path), FoundFile(path, source, split))
    return sorted(found.values(), key=lambda f: f.source), notes


def assign_splits(
    sources: list[str], valid_fraction: float, test_fraction: float, seed: int
) -> dict[str, str]:
    """Deterministic file-level split: files ranked by a seeded hash of their source path.

    Ranking by hash (not shuffling an index) keeps a file in its split when others are added
    or removed nearby; the counts are round(fraction * files), at least one when the fraction
    is positive and there are files to spare.
    """
    if not 0 <= valid_fraction < 1 or not 0 <= test_fraction < 1:
        setting = "valid_fraction" if not 0 <= valid_fraction < 1 else "test_fraction"
        raise SettingError("valid_fraction and test_fraction must be in [0, 1)", setting)
    if valid_fraction + test_fraction >= 1:
        raise SettingError("valid_fraction plus test_fraction must stay below 1", "valid_fraction")
    unique = sorted(set(sources))
    ranked = sorted(unique, key=lambda s: hashlib.sha256(f"{seed}\0{s}".encode()).hexdigest())
    count = len(ranked)

    def share(fraction: float) -> int:
        wanted = round(fraction * count)
        return max(wanted, 1) if fraction > 0 and count >= 3 else wanted

    test_count = share(test_fraction)
    valid_count = min(share(valid_fraction), max(0, count - test_count - 1))
    splits = {s: "train" for s in ranked}
    for source in ranked[:test_count]:
        splits[source] = "test"
    for source in ranked[test_count : test_count + valid_count]:
        splits[source] = "valid"
    return splits
