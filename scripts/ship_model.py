"""Turn a training run into a model shipped in the package, and measure what its card reports.

    python scripts/ship_model.py runs/bach CORPUS --name bach-chorales

1. the run's best checkpoint is written in half precision to
   src/lstm_music/model/weights/NAME.safetensors;
2. the shipped file (not the run's) is scored on the corpus's valid and test splits;
3. 10 pieces are generated at the default sampling and 10 greedily, and `compare` checks them for
   copies of the training pieces and for musical statistics;
4. everything is printed as Markdown for the model card (NAME.md, written by hand beside it).
Every step runs the product's own CLI, as a user would.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from lstm_music.model.checkpoint import load_checkpoint
from lstm_music.model.shipped import models_folder, resolve_checkpoint


def lstm_music(*args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "lstm_music", *args], capture_output=True,
                            text=True)  # fmt: skip
    if result.returncode != 0:
        sys.exit(f"lstm-music {args[0]} failed:\n{result.stderr[-2000:]}")
    return result.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="run folder or checkpoint")
    parser.add_argument("corpus", help="the corpus it was trained on")
    parser.add_argument("--name", required=True, help="shipped model name")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of generated pieces")
    args = parser.parse_args()
    target = models_folder() / f"{args.name}.safetensors"
    load_checkpoint(resolve_checkpoint(args.run)).save(target, half=True)
    print(f"wrote {target} ({target.stat().st_size / 1e6:.2f} MB, float16)\n")
    print("| split | pieces | tokens | NLL/token (nats) | perplexity | top-1 | top-5 | bits/note |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for split in ("valid", "test"):
        r = json.loads(lstm_music("evaluate", str(target), args.corpus, "--split", split, "--json"))
        print(f"| {split} | {r['pieces']} | {r['tokens']:,} | {r['nll_per_token']:.3f} | "
              f"{r['perplexity']:.2f} | {r['accuracy']:.3f} | {r['top5_accuracy']:.3f} | "
              f"{r['bits_per_note']:.2f} |")  # fmt: skip
    work = Path(tempfile.mkdtemp(prefix="ship-"))
    for label, flags in (("default sampling", []), ("greedy", ["--greedy"])):
        folder = work / label.replace(" ", "-")
        lstm_music("generate", str(target), "--out", str(folder / "piece.mid"), "--num", "10",
                   "--seconds", str(args.seconds), "--seed", "1", *flags)  # fmt: skip
        print(f"\n### 10 pieces of {args.seconds:g} s, {label} (seed 1)\n")
        print("```")
        print(lstm_music("compare", str(folder), "--reference", args.corpus).rstrip())
        print("```")
    print(f"\n(generated files kept in {work})")


if __name__ == "__main__":
    main()
