"""Does the listening test measure what it claims? Real against real, against broken copies,
against models; and what grouping by piece guards against.

    python benchmarks/listening.py CORPUS [--chorales CORPUS] [--models base]
        [--pieces 8] [--tokens 1024] [--seed 0]

CORPUS: a corpus made by `prepare` with the defaults (REMI, as the shipped models read); its
pieces, every split, decoded by its tokenizer as `compare` and the report read them, so that
real and sampled music went through the same tokens (raw MIDI against decoded tokens is told
apart by the tokenizer's rounding alone: velocity 90 against 91 told the shipped
`bach-chorales` model from raw chorale files 100% of the time). Arms, each a `listening_test`
(4-bar excerpts, logistic regression, folds grouped by piece, 95% interval by a bootstrap over
pieces):

- real vs real: the folder's pieces shuffled (--seed) and cut into two disjoint halves; should
  be about 50%;
- the same, split by excerpt at random instead of by piece (`split_accuracy`): what grouping
  by piece guards against (the issue's probe: 78% at random, 58% grouped);
- real vs shuffled pitch: the second half with each piece's pitches shuffled within it (rhythm,
  pitch set and loudness kept; melody, harmony and bass lost); should be near 100%;
- real vs random: as many random pieces as the second half (pitches 36-95, durations of a 16th
  to a half note, one note at a time); should be 100%;
- real vs model: each shipped model named in --models samples --pieces pieces of --tokens tokens
  (default sampling, seeded) against every piece of CORPUS;
- with --chorales CORPUS (`prepare --builtin bach-chorales`): chorales vs chorales halves, and
  the shipped `bach-chorales` model by `model_listening_test` (the API the report uses) on the
  corpus's valid split and against all its pieces. That model's own split is not known here:
  some of these chorales are pieces it learnt from, which can only make it look closer.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from lstm_music.corpus.store import Corpus
from lstm_music.evaluation.excerpts import FEATURE_NAMES
from lstm_music.evaluation.listening import (
    ListeningTest,
    listening_test,
    model_listening_test,
    split_accuracy,
)
from lstm_music.evaluation.pieces import load_reference
from lstm_music.evaluation.statistics import Notes, notes_of


def decoded(corpus: Corpus) -> list[Notes]:
    """Every piece of every split, decoded by the corpus's tokenizer."""
    return [p.notes for split in ("train", "valid", "test") for p in load_reference(corpus, split)]


def halves(pieces: list[Notes], seed: int) -> tuple[list[Notes], list[Notes]]:
    order = np.random.default_rng(seed).permutation(len(pieces))
    return [pieces[i] for i in order[::2]], [pieces[i] for i in order[1::2]]


def shuffled_pitch(pieces: list[Notes], seed: int) -> list[Notes]:
    rng = np.random.default_rng(seed)
    return [Notes(p.onset, p.end, rng.permutation(p.pitch), p.meters, p.velocity) for p in pieces]


def random_pieces(count: int, seed: int, quarters: float = 128.0) -> list[Notes]:
    """One note at a time, random pitch, duration and loudness."""
    rng = np.random.default_rng(seed)
    pieces = []
    for _ in range(count):
        durations = rng.choice([0.25, 0.5, 1.0, 2.0], size=int(quarters * 2))
        onset = np.concatenate([[0.0], np.cumsum(durations)[:-1]])
        keep = onset < quarters
        onset, end = onset[keep], (onset + durations)[keep]
        pitch = rng.integers(36, 96, len(onset))
        pieces.append(Notes(onset, end, pitch, velocity=rng.integers(40, 120, len(onset))))
    return pieces


def model_arm(name: str, real: list[Notes], pieces: int, tokens: int, seed: int) -> ListeningTest:
    """A shipped model's sampled pieces against `real` (default sampling, seeded)."""
    from lstm_music.generation.generate import generate
    from lstm_music.generation.sampling import SamplingOptions
    from lstm_music.model.checkpoint import load_checkpoint

    started = time.perf_counter()
    options = SamplingOptions(tokens=tokens, num=pieces, seed=seed)
    sampled = [notes_of(p.score) for p in generate(load_checkpoint(name, "cpu"), options)]
    sampling = time.perf_counter() - started
    test = listening_test(real, sampled, seed, real_name="real")
    print(f"  ({name}: sampling {pieces} x {tokens} tokens {sampling:.1f} s, test "
          f"{test.seconds:.1f} s)")  # fmt: skip
    return test


def row(arm: str, test: ListeningTest) -> str:
    if not test.ran:
        return f"| {arm} | refused: {test.refused} | | | |"
    return (
        f"| {arm} | {test.accuracy:.1%} | {test.low:.1%}-{test.high:.1%} | "
        f"{test.generated_excerpts} / {test.generated_pieces} vs {test.real_excerpts} / "
        f"{test.real_pieces} | {test.words} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus")
    parser.add_argument("--chorales", help="a corpus of Bach chorales (prepare --builtin)")
    parser.add_argument("--models", default="base", help="shipped models against FOLDER")
    parser.add_argument("--pieces", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=1024)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    started = time.perf_counter()
    real = decoded(Corpus.load(args.corpus))
    name = Path(args.corpus).name
    print(f"{name}: {len(real)} pieces; {len(FEATURE_NAMES)} features; "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")  # fmt: skip
    a, b = halves(real, args.seed)
    rows = ["| arm | balanced accuracy | 95% interval | excerpts / pieces (other vs real) | "
            "words |", "| --- | --- | --- | --- | --- |"]  # fmt: skip
    rows.append(row(f"{name}: half vs other half", listening_test(a, b, args.seed)))
    labels = [0] * len(a) + [1] * len(b)
    grouped = split_accuracy(a + b, labels, grouped=True, seed=args.seed)
    scattered = split_accuracy(a + b, labels, grouped=False, seed=args.seed)
    rows.append(f"| {name}: halves, folds by piece / excerpts at random | {grouped:.1%} / "
                f"{scattered:.1%} | | | what grouping guards against |")  # fmt: skip
    rows.append(row(f"{name}: half vs shuffled pitch", listening_test(
        a, shuffled_pitch(b, args.seed), args.seed)))  # fmt: skip
    rows.append(row(f"{name}: half vs random notes", listening_test(
        a, random_pieces(len(b), args.seed), args.seed)))  # fmt: skip
    for model in filter(None, args.models.split(",")):
        test = model_arm(model, real, args.pieces, args.tokens, args.seed)
        rows.append(row(f"{name} vs shipped `{model}` ({args.pieces} x {args.tokens} tokens)",
                        test))  # fmt: skip
    if args.chorales:
        from lstm_music.model.checkpoint import load_checkpoint

        corpus = Corpus.load(args.chorales)
        chorales = decoded(corpus)
        c, d = halves(chorales, args.seed)
        rows.append(row(f"chorales ({len(chorales)}): half vs other half",
                        listening_test(c, d, args.seed)))  # fmt: skip
        valid = model_listening_test(load_checkpoint("bach-chorales", "cpu"), corpus, "valid",
                                     pieces=args.pieces, seed=args.seed)  # fmt: skip
        print(f"  (model_listening_test on the valid split: {valid.seconds:.1f} s in all)")
        rows.append(row(f"chorales valid split vs shipped `bach-chorales` (model_listening_test"
                        f", {args.pieces} x 1024)", valid))  # fmt: skip
        test = model_arm("bach-chorales", chorales, args.pieces, args.tokens, args.seed)
        rows.append(row(f"chorales vs shipped `bach-chorales` ({args.pieces} x {args.tokens})",
                        test))  # fmt: skip
    print("\n".join(rows))
    print(f"total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
