"""Seed preset against the default preset on held-out songs: likelihood, and what they copy.

On the seed's MIDI files (REMI tokens, 10% of the songs held out), both presets train for the
same wall time; then, for each, `evaluate` on the held-out songs and 10 pieces generated at the
seed's greedy decoding and at lstm-music's default sampling (top-p 0.95), each primed like the
blog with a random 100-token training window, checked by `compare` against the training pieces.

    python benchmarks/presets.py [--minutes 5] [--work DIR]
    python benchmarks/presets.py --runs default=RUN_DIR seed=RUN_DIR --corpus CORPUS  # reuse runs
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "seed-midi"
DECODINGS = {"greedy": ["--greedy"], "top-p 0.95": ["--top-p", "0.95"]}


def lstm_music(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "lstm_music", *args], capture_output=True, text=True
    )
    if result.returncode != 0:
        sys.exit(f"lstm-music {args[0]} failed:\n{result.stderr[-2000:]}")
    return result.stdout


def train_presets(work: Path, corpus: Path, minutes: float) -> dict[str, Path]:
    runs = {}
    for preset in ("default", "seed"):
        runs[preset] = work / f"run-{preset}"
        lstm_music(
            "train",
            str(corpus),
            "--out",
            str(runs[preset]),
            "--preset",
            preset,
            "--max-minutes",
            str(minutes),
            "--epochs",
            "1000",
            "--patience",
            "0",
            "--overwrite",
            "-q",
        )
    return runs


def copies(run: Path, corpus: Path, work: Path, name: str, flags: list[str]) -> dict:
    """Generate 10 pieces (100-token corpus primers, not written out: a primer is a copy by
    construction), and compare the new music with the training pieces."""
    folder = work / "generated" / name
    folder.mkdir(parents=True, exist_ok=True)
    for seed in range(10):
        lstm_music(
            "generate",
            str(run),
            "--out",
            str(folder / f"{seed}.mid"),
            "--tokens",
            "500",
            "--primer-corpus",
            str(corpus),
            "--seed",
            str(seed),
            *flags,
        )
    report = json.loads(lstm_music("compare", str(folder), "--reference", str(corpus), "--json"))
    return report


def summarise(report: dict) -> tuple[float, float, int]:
    """Mean longest copied run (notes), mean 8-gram share, pieces flagged as copies."""
    pieces = report["copies"] if "copies" in report else report["pieces"]
    runs = [p["longest_run"] for p in pieces]
    shares = [p["ngram_share"] for p in pieces]
    return sum(runs) / len(runs), sum(shares) / len(shares), sum(bool(p["copied"]) for p in pieces)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--minutes", type=float, default=5.0, help="training time per preset")
    parser.add_argument("--work", type=Path)
    parser.add_argument("--runs", nargs="*", help="reuse runs: default=DIR seed=DIR")
    parser.add_argument("--corpus", type=Path, help="the REMI corpus of the reused runs")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="presets-"))
    if args.runs:
        runs = {name: Path(path) for name, path in (item.split("=", 1) for item in args.runs)}
        corpus = args.corpus
    else:
        corpus = work / "corpus"
        lstm_music("prepare", str(args.data), "--out", str(corpus), "-q")
        runs = train_presets(work, corpus, args.minutes)
    print(
        f"{'preset':8} {'decoding':11} {'valid NLL':>9} {'top-1':>6} {'longest copy':>12} "
        f"{'8-gram share':>12} {'flagged':>7}"
    )
    for preset, run in runs.items():
        scores = json.loads(lstm_music("evaluate", str(run), str(corpus), "--json"))
        for name, flags in DECODINGS.items():
            longest, share, flagged = summarise(
                copies(run, corpus, work, f"{preset}-{name}", flags)
            )
            print(
                f"{preset:8} {name:11} {scores['nll_per_token']:9.3f} {scores['accuracy']:6.3f} "
                f"{longest:12.1f} {share:12.3f} {flagged:4d}/10"
            )


if __name__ == "__main__":
    main()
