"""Held-out figures per source collection of a merged corpus, for a model card.

    python scripts/collection_figures.py MODEL CORPUS_DIR [--split test]

A corpus made from several inputs (`prepare --builtin all`, or several folders) names each
piece by its input folder first (`airds-airs/airds-0001-....mid`); this groups the split's pieces
by that first folder and scores each group as `evaluate` scores a split: every token with the
state carried through the piece, NLL per token (nats) and bits per note. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import math
from collections import defaultdict

from lstm_music.corpus.store import Corpus
from lstm_music.evaluation.likelihood import score_pieces
from lstm_music.model.checkpoint import check_corpus_fits, load_checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="shipped name, checkpoint or run folder")
    parser.add_argument("corpus", help="the merged corpus")
    parser.add_argument("--split", default="test", choices=("valid", "test", "train"))
    args = parser.parse_args()
    checkpoint = load_checkpoint(args.model)
    corpus = Corpus.load(args.corpus)
    check_corpus_fits(checkpoint, corpus)
    groups = defaultdict(list)
    for piece in corpus.split(args.split):
        parts = piece.source.replace("\\", "/").split("/")
        if parts[0] in ("train", "valid", "test") and len(parts) > 2:  # scripts/split_like.py
            parts = parts[1:]
        groups[parts[0]].append(piece)
    print("| collection | pieces | tokens | NLL/token (nats) | bits/note |")
    print("| --- | --- | --- | --- | --- |")
    for name in sorted(groups):
        pieces = groups[name]
        totals = score_pieces(checkpoint.model, [p.ids for p in pieces])
        notes = sum(p.info.notes for p in pieces)
        bits = totals.nll / math.log(2) / notes if notes else float("nan")
        print(f"| {name} | {len(pieces)} | {totals.tokens:,} | {totals.nll_per_token:.3f} | "
              f"{bits:.2f} |")  # fmt: skip


if __name__ == "__main__":
    main()
