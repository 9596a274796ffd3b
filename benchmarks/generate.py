"""Generation speed: the seed's decoding loop against ours, side by side in one run.

The seed (SUMMARY.md step 8) re-runs its model on the whole 100-token window for every new note
and takes the argmax. Here that loop is written in plain PyTorch (one-hot window -> LSTM(512) ->
LSTM(256) -> Dense, the blog's architecture) and timed against lstm-music's stateful decoding on
the same seed-size model: 1000 greedy tokens, then batches (--num 64).

    python benchmarks/generate.py [--data ../shared/datasets/seed-midi] [--tokens 1000]

Weights are random: speed does not depend on them. The vocabulary is the seed tokens of the
seed's MIDI files when ../shared is there (its size sets the model), else 330 tokens.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from lstm_music.generation.sampling import SamplingOptions
from lstm_music.generation.stepper import FastStepper, pick_tokens
from lstm_music.model.lstm import LSTMModel, ModelConfig

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "seed-midi"


class SeedModel(nn.Module):
    """The blog's Keras model in PyTorch: one-hot (B, 100, V) in, next-token logits out."""

    def __init__(self, vocab: int) -> None:
        super().__init__()
        self.first, self.second = (
            nn.LSTM(vocab, 512, batch_first=True),
            nn.LSTM(512, 256, batch_first=True),
        )
        self.dense = nn.Linear(256, vocab)

    def forward(self, onehot: torch.Tensor) -> torch.Tensor:
        x, _ = self.first(onehot)
        x, _ = self.second(x)
        return self.dense(x[:, -1])


GREEDY = SamplingOptions(greedy=True)


def seed_loop(model: SeedModel, primer: list[int], vocab: int, tokens: int) -> float:
    """Seconds for the blog's loop: re-run the whole window, argmax, slide by one."""
    window = list(primer)
    started = time.perf_counter()
    with torch.inference_mode():
        for _ in range(tokens):
            onehot = torch.nn.functional.one_hot(torch.tensor([window]), vocab).float()
            window = window[1:] + [int(model(onehot).argmax())]
    return time.perf_counter() - started


def our_loop(model: LSTMModel, primer: list[int], tokens: int, batch: int) -> tuple[float, float]:
    """Seconds for stateful decoding of `batch` rows: (setup and primer, the new tokens)."""
    started = time.perf_counter()
    stepper = FastStepper(model)
    state = stepper.convert_state(model.init_state(batch))
    for token in primer:
        logits, state = stepper.step(np.full(batch, token), state)
    token = pick_tokens(logits, GREEDY)
    primed = time.perf_counter()
    for _ in range(tokens):
        logits, state = stepper.step(token, state)
        token = pick_tokens(logits, GREEDY)
    return primed - started, time.perf_counter() - primed


def vocabulary_size(data: Path) -> tuple[int, str]:
    if not data.is_dir():
        return 330, "330 (no ../shared: a stand-in size)"
    from lstm_music.corpus.prepare import PrepareConfig, prepare

    with tempfile.TemporaryDirectory() as work:
        config = PrepareConfig(inputs=[str(data)], out=f"{work}/c", tokenizer="seed", tracks="seed")
        size = len(prepare(config, progress=False).corpus.vocabulary)
    return size, f"{size} (seed tokens of {data})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--tokens", type=int, default=1000)
    parser.add_argument(
        "--seed-tokens",
        type=int,
        default=200,
        help="tokens timed for the (slow) seed loop, scaled per token",
    )
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    torch.manual_seed(0)
    vocab, vocab_note = vocabulary_size(args.data)
    primer = [int(i) for i in np.random.default_rng(0).integers(4, vocab, 100)]
    ours = LSTMModel(ModelConfig(vocab, 512, [512, 256], 0.3)).eval()
    seed = SeedModel(vocab).eval()
    seed_loop(seed, primer, vocab, 5)  # warm-up
    our_loop(ours, primer, 10, 1)
    seed_seconds = seed_loop(seed, primer, vocab, args.seed_tokens) / args.seed_tokens
    setup, one = our_loop(ours, primer, args.tokens, 1)
    one /= args.tokens
    many = our_loop(ours, primer, args.tokens, args.batch)[1]
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads); vocabulary {vocab_note}"
    )
    print(
        f"{'decoding (greedy, seed-size model)':44} {'ms/token':>9} {'tokens/s':>10} {'vs seed':>8}"
    )
    print(
        f"{'seed loop, plain PyTorch (re-run 100 window)':44} {1000 * seed_seconds:9.3f} "
        f"{1 / seed_seconds:10,.0f} {1:8.0f}x"
    )
    print(
        f"{'lstm-music, 1 piece':44} {1000 * one:9.3f} {1 / one:10,.0f} {seed_seconds / one:8.0f}x"
    )
    per_token = many / (args.tokens * args.batch)
    print(
        f"{f'lstm-music, --num {args.batch} (per token)':44} {1000 * per_token:9.4f} "
        f"{1 / per_token:10,.0f} {seed_seconds / per_token:8.0f}x"
    )
    print(
        f"goals: <= 0.25 ms/token for one piece ({'met' if one <= 0.25e-3 else 'NOT met'}); "
        f">= 50x the plain-PyTorch seed loop ({'met' if seed_seconds / one >= 50 else 'NOT met'}); "
        "the seed's own Keras loop was measured at 50 ms/token (seed-midi/SOURCE.md)"
    )


if __name__ == "__main__":
    main()
