"""Are the hard constraints hard? Random key / pitch range / instrument combinations, counted.

    python benchmarks/constraints.py [--combos 200] [--tokens 200] [--models A,B]

For each model (the shipped ones, plus a random tiny LSTM over REMI-with-programs tokens, which
samples nearly uniformly and is the only one whose tokens name instruments), --combos random
combinations of key (+ key_strict), pitch range (some impossible: 0..1, 61..61 with a key),
instruments, with and without a primer (about 40 tokens of an unconstrained piece of that
model, its last note complete): each is either refused before generating (a `SettingError`:
its message must be one line) or generates a piece whose new notes are counted against what
was asked
(generation.outside.notes_outside). Goal: zero notes outside, every refusal one line.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections import Counter

SCALES = ("major", "minor", "dorian", "major-pentatonic", "blues")
TONICS = ("C", "D", "Eb", "F#", "A", "Bb")
INSTRUMENTS = ("piano", "bass", "drums", "strings", "guitar", "0", "33", "40", "piano,drums")


NOTE_SHAPES = [["Pitch", "Velocity", "Duration"], ["PitchDrum", "Velocity", "Duration"]]


def random_options(rng: random.Random) -> dict:
    """One random combination of the hard constraints."""
    asked: dict = {}
    if rng.random() < 0.7:
        asked["key"] = f"{rng.choice(TONICS)}-{rng.choice(SCALES)}"
        asked["key_strict"] = rng.random() < 0.9  # a key alone: a soft control, refused here
    if rng.random() < 0.7:
        low = rng.choice((0, 21, 36, 48, 55, 60, 61, 72, 100, 120))
        asked["pitch_range"] = f"{low}..{min(127, low + rng.choice((0, 1, 2, 5, 12, 24, 48)))}"
    if rng.random() < 0.4:
        asked["instruments"] = rng.choice(INSTRUMENTS)
    return asked


def programs_model():
    """A random tiny LSTM over REMI tokens with programs (one stream): instruments to mask."""
    import torch

    from lstm_music.corpus.store import SPECIAL_TOKENS
    from lstm_music.model.checkpoint import Checkpoint
    from lstm_music.model.lstm import LSTMModel, ModelConfig
    from lstm_music.tokens import get_tokenizer

    config = {"use_programs": True, "one_token_stream_for_programs": True,
              "program_changes": False, "use_pitchdrum_tokens": True}  # fmt: skip
    tokenizer = get_tokenizer("remi", config=config)
    words = [*SPECIAL_TOKENS, *tokenizer.base_vocabulary()]
    torch.manual_seed(0)
    model = LSTMModel(ModelConfig(len(words), 8, [16], 0.0)).eval()
    return Checkpoint(model, tokenizer.to_config(), words)


def primer_tokens(checkpoint, seed: int) -> list[str]:
    """30 or more tokens of an unconstrained piece, ending with a note complete (REMI: Pitch,
    Velocity, Duration), as a file's tokens end: a primer cut inside a note would have its
    note finished by new tokens, and that note is the primer's, not sampled."""
    from lstm_music.generation.generate import generate
    from lstm_music.generation.sampling import SamplingOptions

    tokens = generate(checkpoint, SamplingOptions(tokens=400, seed=seed))[0].tokens
    ends = [i + 1 for i in range(32, len(tokens))
            if [t.split("_")[0] for t in tokens[i - 2 : i + 1]] in NOTE_SHAPES]  # fmt: skip
    return tokens[: ends[0]] if ends else []


def measure(checkpoint, combos: int, tokens: int, seed: int) -> Counter:
    """Counts for one model: generated, refused, refusals of more than one line, notes outside
    (and notes written, for scale)."""
    from lstm_music.errors import SettingError
    from lstm_music.generation.generate import generate
    from lstm_music.generation.outside import notes_outside
    from lstm_music.generation.sampling import SamplingOptions

    rng, counts = random.Random(seed), Counter()
    start = primer_tokens(checkpoint, seed)
    tokenizer = checkpoint.tokenizer()
    for index in range(combos):
        asked = random_options(rng)
        primer = start if index % 2 else []
        try:
            options = SamplingOptions(tokens=tokens, seed=index, primer=primer, **asked)
            piece = generate(checkpoint, options)[0]
        except SettingError as error:
            counts["refused"] += 1
            counts["refusals over one line"] += "\n" in str(error)
            continue
        primer_score = tokenizer.decode(primer) if primer else None
        counts["generated"] += 1
        counts["notes"] += piece.score.note_num() - (primer_score.note_num() if primer else 0)
        counts["notes outside"] += notes_outside(piece.score, options, primer_score)
        counts["ended early"] += any(w.startswith("ended after") for w in piece.warnings)
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--combos", type=int, default=200)
    parser.add_argument("--tokens", type=int, default=200, help="new tokens per piece")
    parser.add_argument("--models", default="bach-chorales,oneills-1850")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    from lstm_music.model.checkpoint import load_checkpoint
    from lstm_music.model.shipped import resolve_checkpoint

    models = {name: load_checkpoint(resolve_checkpoint(name)) for name in args.models.split(",")}
    models["random REMI+programs"] = programs_model()
    total = Counter()
    for name, checkpoint in models.items():
        counts = measure(checkpoint, args.combos, args.tokens, args.seed)
        total += counts
        print(f"{name}: {dict(counts)}", flush=True)
    print(f"all: {dict(total)}")
    return 1 if total["notes outside"] or total["refusals over one line"] else 0


if __name__ == "__main__":
    sys.exit(main())
