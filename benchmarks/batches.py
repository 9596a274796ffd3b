"""How full are the training batches? This checkout's epoch plan beside an older one's.

    mkdir -p /tmp/base74 && git archive 74d376a src | tar -x -C /tmp/base74
    python benchmarks/batches.py CORPUS_DIR [CORPUS_DIR ...] --baseline-src /tmp/base74/src

For each prepared corpus: its training pieces' lengths, then, for the default lanes and window
(32 x 128, or --lanes / --window), the share of each epoch's batch capacity (lanes x window x
batches) that holds real targets, and the batches per epoch, for both plans over --epochs
epochs (the mean; the plans differ by epoch in how they shuffle). The older plan is imported
from --baseline-src in a subprocess, so the two never share a module. Counting only: no
training, so the figures do not depend on the machine's load.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

PROBE = """
import json, sys
from lstm_music.corpus.store import Corpus
from lstm_music.training.batches import EpochPlan
corpus, lanes, window, epochs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
lengths = [len(piece.ids) for piece in Corpus.load(corpus).split("train")]
shares, batches = [], []
for epoch in range(epochs):
    plan = EpochPlan(lengths, lanes, window, 0, epoch)
    width = getattr(plan, "window", window)
    shares.append((sum(lengths) + len(lengths)) / (lanes * width * plan.batches))
    batches.append(plan.batches)
print(json.dumps({"pieces": len(lengths), "tokens": sum(lengths),
                  "utilisation": sum(shares) / epochs, "batches": sum(batches) / epochs}))
"""


def measure(src: Path, corpus: Path, lanes: int, window: int, epochs: int) -> dict:
    env = {"PYTHONPATH": str(src)}
    command = [sys.executable, "-c", PROBE, str(corpus), str(lanes), str(window), str(epochs)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode:
        raise SystemExit(f"{src}: {done.stderr.strip().splitlines()[-1]}")
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpora", nargs="+", type=Path, metavar="CORPUS_DIR")
    parser.add_argument("--baseline-src", type=Path, help="an older checkout's src/")
    parser.add_argument("--lanes", type=int, default=32)
    parser.add_argument("--window", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    print(f"lanes {args.lanes}, window {args.window}, mean of {args.epochs} epochs")
    header = f"{'corpus':28} {'pieces':>6} {'tokens':>10} {'now':>6} {'batches':>8}"
    print(header + (f" {'before':>7} {'batches':>8} {'ratio':>6}" if args.baseline_src else ""))
    for corpus in args.corpora:
        now = measure(SRC, corpus, args.lanes, args.window, args.epochs)
        line = (
            f"{corpus.name[:28]:28} {now['pieces']:>6} {now['tokens']:>10,} "
            f"{now['utilisation']:>6.3f} {now['batches']:>8.1f}"
        )
        if args.baseline_src:
            old = measure(args.baseline_src, corpus, args.lanes, args.window, args.epochs)
            ratio = now["utilisation"] / old["utilisation"]
            line += f" {old['utilisation']:>7.3f} {old['batches']:>8.1f} {ratio:>6.2f}"
        print(line)


if __name__ == "__main__":
    main()
