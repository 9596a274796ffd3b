"""A folder of links whose train/valid/test sub-folders keep each piece in the split it had in
the corpora an earlier model was trained on, for a model that starts from that one.

    python scripts/split_like.py OUT FOLDER... --kept EARLIER_CORPUS [--kept ...] \\
        [--valid-fraction 0.05 --test-fraction 0.05]
    lstm-music prepare OUT --out CORPUS

A model warm-started from another has trained on that one's training split; a new corpus split
afresh would put some of those pieces in its valid and test splits, and the new model's held-out
figures would flatter it. A file whose bytes match a piece of a `--kept` corpus (its manifest's
content hash) takes that piece's split; the rest are split by the fractions, the way `prepare`
splits (a seeded hash of the source). Sources stay `FOLDER_NAME/...` under each split folder.
Nothing is copied: the tree holds symbolic links.
"""

from __future__ import annotations

import argparse
import hashlib
import os
from collections import Counter
from pathlib import Path

from lstm_music.corpus.discover import assign_splits, find_midi_files
from lstm_music.corpus.store import Corpus


def kept_splits(corpus_dir: str) -> dict[str, str]:
    """Content hash -> split for every piece of an earlier corpus."""
    corpus = Corpus.load(corpus_dir)
    split_of_source = {
        piece.source: split for split in ("train", "valid", "test") for piece in corpus.split(split)
    }
    return {
        entry["sha256"]: split_of_source[entry["source"]]
        for entry in corpus.manifest.get("files", [])
        if entry.get("status") == "ok" and entry["source"] in split_of_source
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", help="folder to create (must not exist)")
    parser.add_argument("folders", nargs="+", help="the MIDI folders of the new corpus")
    parser.add_argument("--kept", action="append", default=[], help="an earlier corpus")
    parser.add_argument("--valid-fraction", type=float, default=0.05)
    parser.add_argument("--test-fraction", type=float, default=0.05)
    args = parser.parse_args()
    split_of: dict[str, str] = {}
    for corpus_dir in args.kept:
        for key, split in kept_splits(corpus_dir).items():
            split_of.setdefault(key, split)
    files, _ = find_midi_files(args.folders)
    digests = [hashlib.sha256(f.path.read_bytes()).hexdigest() for f in files]
    fresh = assign_splits(
        [f.source for f, key in zip(files, digests) if key not in split_of],
        args.valid_fraction,
        args.test_fraction,
        seed=0,
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=False)
    counts, seen = Counter(), set()
    for found, key in zip(files, digests):
        if key in seen:  # the same music twice (a piece in two folders): once
            continue
        seen.add(key)
        split = split_of.get(key) or fresh[found.source]
        target = out / split / found.source
        target.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(found.path.resolve(), target)
        counts[split, key in split_of] += 1
    for split in ("train", "valid", "test"):
        print(f"{split}: {counts[split, True] + counts[split, False]} files "
              f"({counts[split, True]} as in an earlier corpus)")  # fmt: skip


if __name__ == "__main__":
    main()
