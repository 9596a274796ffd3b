"""The classic frame-level polyphonic benchmark, end to end with lstm-music's own commands.

1. the .mat piano rolls (train/valid/test) -> MIDI folders train/ valid/ test/ (the exact round
   trip of the `grid` tokenizer);
2. `lstm-music prepare --tokenizer grid --grid-step <step>` (silences kept as they are);
3. `lstm-music train` (the recipe below was chosen on the valid split; +-5 semitone transposition);
4. `lstm-music evaluate --split test`, once: NLL per time step, first step of each piece unscored,
   for the trained model alone and for its mixture over the transpositions it was trained on
   (`--transpose-mixture`, chosen on the valid split; the last line reports the mixture unless
   `--transpose-mixture off`).

    python benchmarks/polyphonic.py ../shared/datasets/jsb/JSB_Chorales.mat --step quarter
    python benchmarks/polyphonic.py Nottingham.mat --step eighth --minutes 30 --hidden 512
    (flags the script does not know are passed on to `lstm-music train`)

The last line of output is `test_nll_per_step=<value>`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from lstm_music.jsb import load_piano_roll_mat, write_split_midi

STEPS = {"quarter": 1.0, "eighth": 0.5, "sixteenth": 0.25}
PUBLISHED = [  # JSB Chorales, test NLL per time step (nats)
    ("LSTM (Bai et al. 2018, Table 1)", 8.45),
    ("GRU (Bai et al. 2018)", 8.43),
    ("TCN (Bai et al. 2018)", 8.10),
    ("RNN-NADE (Boulanger-Lewandowski et al. 2012)", 5.2),
    ("SRNN (Fraccaro et al. 2016, a variational bound)", 4.74),
]
RECIPE = [
    "--embedding",
    "128",
    "--hidden",
    "384,384",
    "--dropout",
    "0.3",
    "--window",
    "128",
    "--batch-size",
    "16",
    "--lr",
    "3e-3",
    "--lr-patience",
    "3",
    "--transpose=-5..6",
    "--patience",
    "12",
    "--epochs",
    "1000",
]


def lstm_music(*args: str) -> str:
    """Run the product's CLI as a user would; its output, or exit with its error."""
    command = [sys.executable, "-m", "lstm_music", *args]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"{' '.join(args[:1])} failed:\n{result.stderr[-2000:]}")
    return result.stdout


def to_midi(mat: Path, work: Path, step: float, pieces: int | None) -> dict[str, int]:
    """Write the rolls as MIDI; time steps per split (to check the corpus against)."""
    rolls = load_piano_roll_mat(mat)
    if pieces:
        rolls = {split: items[:pieces] for split, items in rolls.items()}
    write_split_midi(rolls, work / "midi", step)
    return {split: sum(len(roll) for roll in items) for split, items in rolls.items()}


def check_corpus(corpus: Path, steps: dict[str, int]) -> None:
    """Every time step of the .mat file must be a `Step` token of the corpus."""
    from lstm_music.corpus import Corpus

    loaded = Corpus.load(corpus)
    for split, expected in steps.items():
        found = sum(piece.tokens.count("Step") for piece in loaded.split(split))
        if found != expected:
            sys.exit(f"{split}: {found} steps in the corpus, {expected} in the .mat file")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "dataset", type=Path, help="a .mat file of the Boulanger-Lewandowski family"
    )
    parser.add_argument(
        "--step",
        choices=STEPS,
        default="quarter",
        help="time step of one row: quarter (JSB) or eighth (Nottingham, ...)",
    )
    parser.add_argument("--minutes", type=float, help="training budget (25; --quick: 1/3)")
    parser.add_argument("--work", type=Path, help="keep the MIDI, corpus and run here")
    parser.add_argument(
        "--quick", action="store_true", help="3 pieces per split, 20 s: a smoke run"
    )
    parser.add_argument(
        "--transpose-mixture",
        default="-5..6",
        metavar="LOW..HIGH",
        help="also score the model averaged over these keys (write =-5..6; 'off': model alone)",
    )
    args, extra = parser.parse_known_args()  # unknown flags go to `lstm-music train`
    work = args.work or Path(tempfile.mkdtemp(prefix="polyphonic-"))
    started = time.perf_counter()
    steps = to_midi(args.dataset, work, STEPS[args.step], 3 if args.quick else None)
    corpus, run = work / "corpus", work / "run"
    lstm_music(
        "prepare",
        str(work / "midi"),
        "--out",
        str(corpus),
        "--tokenizer",
        "grid",
        "--grid-step",
        args.step,
        "--max-silence",
        "0",
        "-q",
    )
    check_corpus(corpus, steps)
    args.minutes = args.minutes or (20 / 60 if args.quick else 25.0)
    minutes = args.minutes
    trained = lstm_music(
        "train",
        str(corpus),
        "--out",
        str(run),
        "--max-minutes",
        str(minutes),
        "--overwrite",
        "-q",
        *RECIPE,
        *extra,
    )
    evaluations = {}
    for mixture in dict.fromkeys(["off", args.transpose_mixture]):
        for split in ("valid", "test"):
            command = ["evaluate", str(run), str(corpus), "--split", split, "--json"]
            output = lstm_music(*command, f"--transpose-mixture={mixture}")
            evaluations[mixture, split] = json.loads(output)
    args.recipe = [*RECIPE, *extra]
    report(args, steps, trained, evaluations, time.perf_counter() - started)


def report(args, steps: dict[str, int], trained: str, evaluations: dict, seconds: float) -> None:
    print(
        f"dataset {args.dataset.name}, step {args.step}; time steps "
        + ", ".join(f"{split} {count:,}" for split, count in steps.items())
    )
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"wall time {seconds / 60:.1f} min in all"
    )
    print(trained.strip().splitlines()[0])
    print(f"recipe: lstm-music train {' '.join(args.recipe)} --max-minutes {args.minutes:g}")
    rows = []
    for (mixture, split), result in evaluations.items():
        if split == "test":
            valid = evaluations[mixture, "valid"]
            name = "model alone" if mixture == "off" else f"mixture over keys {mixture}"
            print(
                f"{name}: valid NLL per step {valid['nll_per_step']:.3f}; test per token "
                f"{result['nll_per_token']:.3f} nats, top-1 accuracy {result['accuracy']:.3f}"
            )
            rows.append((f"lstm-music, {name} (first step unscored)", result["nll_per_step"]))
    print(f"\n{'test NLL per time step (nats), lower is better':60} value")
    for name, value in [*PUBLISHED, *rows]:
        print(f"{name:60} {value:5.2f}")
    ours = rows[-1][1]
    goal = "met" if ours < 4.6 else f"NOT met, {ours - 4.6:.2f} above"
    print(f"goal below 4.6 ({rows[-1][0]}): {goal}")
    print(f"test_nll_per_step={ours:.4f}")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
