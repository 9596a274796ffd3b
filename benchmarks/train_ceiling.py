"""Training speed against this machine's matrix-multiply ceiling for the same model.

    python benchmarks/train_ceiling.py CORPUS [--threads 1] [--steps 60] [--hidden 512] ...

Issue 21 asks, before a long CPU run: how close does `train` come to what the matrix multiplies
of the same model could do on this machine? Two figures, side by side in one run:

1. **the trainer**: `lstm-music train CORPUS --max-steps N --no-report` in a child process (the
   user's path: batches, transposition, carried state, clipping, AdamW, validation excluded),
   tokens per second from its own metrics.csv;
2. **the ceiling**: the same model's matrix multiplies alone, at the shapes training does them
   (batch B lanes of T tokens): the input projection of each layer as one (B*T, in) x (in, 4H)
   multiply, the recurrent one as T multiplies of (B, H) x (H, 4H), the head (B*T, H) x (H, V);
   the backward pass as the two multiplies per forward one (gradient of the input, and of the
   weight, the latter over all T steps at once). Nothing else: no gates, no softmax, no
   optimiser. Tokens per second = B*T over that time, with the same thread count.

The share (1 / 2) says how much of the trainer's time is the unavoidable arithmetic. A third
line gives one large square multiply's rate, the machine's peak, for scale: the recurrent
multiplies of a batch of 32 cannot reach it.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch


def best_seconds(work, repeats: int = 5) -> float:
    """The fastest of `repeats` timings of `work()` (after one warm-up): noise only adds."""
    work()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def model_multiplies(batch: int, window: int, sizes: list[int], vocab: int):
    """A function doing one training step's matrix multiplies for this model, nothing else."""
    tokens = batch * window
    layers = []
    for inputs, hidden in zip(sizes, sizes[1:]):
        layers.append({
            "x": torch.randn(tokens, inputs), "w_in": torch.randn(inputs, 4 * hidden),
            "h": torch.randn(batch, hidden), "w_h": torch.randn(hidden, 4 * hidden),
            "gates": torch.randn(tokens, 4 * hidden), "g_step": torch.randn(batch, 4 * hidden),
            "h_all": torch.randn(hidden, tokens),
        })  # fmt: skip
    top = torch.randn(tokens, sizes[-1])
    head = torch.randn(sizes[-1], vocab)
    grad_logits = torch.randn(tokens, vocab)

    def step() -> None:
        for layer in layers:  # forward
            layer["x"] @ layer["w_in"]  # (B*T, in) x (in, 4H)
            for _ in range(window):
                layer["h"] @ layer["w_h"]  # (B, H) x (H, 4H), one per time step
        top @ head  # (B*T, H) x (H, V)
        grad_logits @ head.T  # backward: head, input gradient and weight gradient
        top.T @ grad_logits
        for layer in reversed(layers):
            for _ in range(window):
                layer["g_step"] @ layer["w_h"].T  # (B, 4H) x (4H, H), one per time step
            layer["h_all"] @ layer["gates"]  # recurrent weight gradient, all steps at once
            layer["gates"] @ layer["w_in"].T  # input gradient
            layer["x"].T @ layer["gates"]  # input weight gradient

    return step


def flops_per_token(sizes: list[int], vocab: int) -> float:
    """Multiply-add FLOPs of one token's forward and backward pass (3x the forward)."""
    forward = sum(2 * 4 * h * (i + h) for i, h in zip(sizes, sizes[1:])) + 2 * sizes[-1] * vocab
    return 3.0 * forward


def peak_gflops(size: int = 1024) -> float:
    a, b = torch.randn(size, size), torch.randn(size, size)
    return 2 * size**3 / best_seconds(lambda: a @ b) / 1e9


def trainer_tokens_per_second(args: argparse.Namespace) -> float:
    """Tokens per second of `lstm-music train` over its steps (from its metrics.csv)."""
    run = Path(tempfile.mkdtemp(prefix="ceiling-")) / "run"
    command = [sys.executable, "-m", "lstm_music", "train", str(args.corpus), "--out", str(run),
               "--max-steps", str(args.steps), "--threads", str(args.threads), "--no-report",
               "--quiet", "--hidden", ",".join(map(str, args.hidden)),
               "--embedding", str(args.embedding), "--batch-size", str(args.batch),
               "--window", str(args.window), "--eval-every", "0", "--epochs", "1000"]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True)
    with (run / "metrics.csv").open() as file:
        rows = [row for row in csv.DictReader(file) if row["tokens_per_second"]]
    return float(rows[-1]["tokens_per_second"])


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", type=Path, help="a corpus made by `lstm-music prepare`")
    parser.add_argument("--threads", type=int, default=1, help="torch threads, both sides (1)")
    parser.add_argument("--steps", type=int, default=60, help="trainer steps to time (60)")
    parser.add_argument("--embedding", type=int, default=256)
    parser.add_argument("--hidden", type=lambda s: [int(x) for x in s.split(",")], default=[512])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--window", type=int, default=128)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    trainer = trainer_tokens_per_second(args)
    vocab = len(json.loads((args.corpus / "corpus.json").read_text())["vocabulary"])
    sizes = [args.embedding, *args.hidden]
    seconds = best_seconds(model_multiplies(args.batch, args.window, sizes, vocab))
    ceiling = args.batch * args.window / seconds
    flops = flops_per_token(sizes, vocab)
    peak = peak_gflops()
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}, "
          f"torch {torch.__version__}, {args.threads} thread(s)")  # fmt: skip
    print(
        f"model: embedding {args.embedding}, LSTM {args.hidden}, vocabulary {vocab}, "
        f"batch {args.batch} x window {args.window}; {flops / 1e6:.1f} MFLOP per token"
    )
    print("| what | tokens/s | GFLOP/s | share of the ceiling |")
    print("| --- | ---: | ---: | ---: |")
    print(
        f"| `train` ({args.steps} steps) | {trainer:,.0f} | {trainer * flops / 1e9:.1f} | "
        f"{trainer / ceiling:.0%} |"
    )
    print(
        f"| the same multiplies alone (ceiling) | {ceiling:,.0f} | {ceiling * flops / 1e9:.1f} "
        f"| 100% |"
    )
    print(
        f"| one 1024x1024 multiply (peak, for scale) | {peak * 1e9 / flops:,.0f} | {peak:.1f} "
        f"| {peak * 1e9 / flops / ceiling:.0%} |"
    )


if __name__ == "__main__":
    main()
