"""The classic frame-level polyphonic benchmark, end to end with lstm-music's own commands.

1. the .mat piano rolls (train/valid/test) -> MIDI folders train/ valid/ test/ (the exact round
   trip of the `grid` tokenizer: each file is frame-marked, so silent rows at either end of a
   piece survive and the corpus has one `Step` per row);
2. `lstm-music prepare --tokenizer grid --grid-step <step>` (silences kept as they are);
3. `lstm-music train` with a recipe planned for the budget (`plan_recipe`: model size, validation
   cadence and learning-rate patience from the training-set size and the throughput measured on
   this machine; `--recipe jsb`: the fixed recipe chosen on JSB's valid split); +-5 semitones;
4. `lstm-music evaluate --split test`, once: NLL per time step, first step of each piece unscored,
   for the trained model alone and for its mixture over the transpositions it was trained on
   (`--transpose-mixture`, chosen on the valid split; the last line reports the mixture unless
   `--transpose-mixture off`). `--valid-only` never looks at test (for choosing settings).

    python benchmarks/polyphonic.py ../shared/datasets/jsb/JSB_Chorales.mat --step quarter
    python benchmarks/polyphonic.py Nottingham.mat --step eighth --minutes 30 --hidden 512
    (flags the script does not know are passed on to `lstm-music train` and override the plan)

Published figures are printed only for a dataset whose figures are known (JSB Chorales, found
by file name or split sizes, or named with `--dataset jsb`). The last line of output is
`test_nll_per_step=<value>` (`valid_nll_per_step=<value>` with `--valid-only`).
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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lstm_music.corpus.pianoroll import load_piano_roll_mat, write_split_midi
from lstm_music.corpus.store import Corpus

STEPS = {"quarter": 1.0, "eighth": 0.5, "sixteenth": 0.25}
PUBLISHED = {  # test NLL per time step (nats), per dataset whose figures are known
    "jsb": [
        ("LSTM (Bai et al. 2018, Table 1)", 8.45),
        ("GRU (Bai et al. 2018)", 8.43),
        ("TCN (Bai et al. 2018)", 8.10),
        ("RNN-NADE (Boulanger-Lewandowski et al. 2012)", 5.2),
        ("SRNN (Fraccaro et al. 2016, a variational bound)", 4.74),
    ],
}
JSB_PIECES = (229, 76, 77)  # train, valid, test chorales of JSB_Chorales.mat
COMMON = ["--dropout", "0.3", "--window", "128", "--batch-size", "16", "--lr", "3e-3"]
COMMON += ["--transpose=-5..6", "--epochs", "1000"]
COMMON += ["--lr-schedule", "plateau", "--lr-decay", "0.5"]  # the schedule of JSB's figures
JSB_RECIPE = [*COMMON, "--embedding", "128", "--hidden", "384,384"]
JSB_RECIPE += ["--lr-patience", "3", "--patience", "12"]
TOKENS_PER_STEP = 16 * 128  # batch x window of every recipe
# (embedding, hidden) largest first; 384,384 is what JSB's valid split chose at 25 minutes
LADDER = ((128, (384, 384)), (96, (256, 256)), (64, (128, 128)))
MIN_EPOCHS = 20  # the largest model that gets this many passes over the training set wins
MIN_VALIDATIONS = 20  # validate within epochs when there are fewer epochs than this ...
VALID_SHARE = 0.1  # ... as long as validation takes at most this share of the budget
MIN_EVAL_EVERY = 50  # steps: a probe made while the machine was busy must not flood it
LOOP_EFFICIENCY = 0.6  # the training loop's tokens/s over the bare probe's (RESULTS.md)


def lstm_music(*args: str) -> str:
    """Run the product's CLI as a user would; its output, or exit with its error."""
    command = [sys.executable, "-m", "lstm_music", *args]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"{' '.join(args[:1])} failed:\n{result.stderr[-2000:]}")
    return result.stdout


@dataclass
class Plan:
    """A training schedule for one budget: the model, and when to validate, decay and stop."""

    embedding: int
    hidden: tuple[int, ...]
    tokens_per_second: float  # training throughput the plan assumes (probe x loop efficiency)
    epochs: float  # passes over the training set the budget should give
    steps: int  # optimiser steps the budget should give
    eval_every: int  # 0: validate once per epoch; else also every this many steps
    lr_patience: int  # stalled validations before the learning rate is halved
    patience: int  # stalled validations before training stops

    def flags(self) -> list[str]:
        hidden = ",".join(map(str, self.hidden))
        return [*COMMON, "--embedding", str(self.embedding), "--hidden", hidden]  # fmt: skip

    def schedule_flags(self) -> list[str]:
        flags = ["--lr-patience", str(self.lr_patience), "--patience", str(self.patience)]
        return [*flags, "--eval-every", str(self.eval_every)] if self.eval_every else flags

    def describe(self) -> str:
        validation = "every epoch" + (f" and {self.eval_every} steps" if self.eval_every else "")
        return (
            f"plan: LSTM {','.join(map(str, self.hidden))} (embedding {self.embedding}) at "
            f"{self.tokens_per_second:,.0f} tokens/s: about {self.epochs:.0f} epochs, "
            f"{self.steps:,} steps; validation {validation}, lr halved after "
            f"{self.lr_patience} and stop after {self.patience} stalled validations"
        )


def plan_recipe(
    train_tokens: int,
    valid_tokens: int,
    minutes: float,
    throughput: Callable[[int, tuple[int, ...]], tuple[float, float]],
) -> Plan:
    """The largest model of `LADDER` that the budget takes through `MIN_EPOCHS` epochs.

    `throughput(embedding, hidden)` is (training, scoring) tokens per second on this machine.
    Validation is per epoch; with fewer than `MIN_VALIDATIONS` epochs it is also every few steps,
    as often as `VALID_SHARE` of the budget allows, so that the learning-rate decay and the
    choice of the best checkpoint still have validations to act on. The patiences scale with the
    number of validations, up to JSB's recipe (3 and 12 of about 100 at JSB's size, 25 minutes).
    """
    budget, plan = max(minutes, 0.0) * 60, None
    for embedding, hidden in LADDER:
        speeds = throughput(embedding, hidden)
        plan = _plan_for(embedding, hidden, speeds, train_tokens, valid_tokens, budget)
        if plan.epochs >= MIN_EPOCHS:
            break
    assert plan is not None
    return plan


def _plan_for(
    embedding: int,
    hidden: tuple[int, ...],
    speeds: tuple[float, float],
    train_tokens: int,
    valid_tokens: int,
    budget: float,
) -> Plan:
    """The schedule one model gets in `budget` seconds (see `plan_recipe`)."""
    speed = speeds[0] * LOOP_EFFICIENCY
    one_validation = valid_tokens / max(speeds[1], 1.0)  # seconds
    epochs = budget * speed / max(train_tokens, 1)  # before validation takes its share
    affordable = int(VALID_SHARE * budget / max(one_validation, 1e-9))
    within_epochs = epochs + 1 < min(MIN_VALIDATIONS, affordable)
    validations = min(MIN_VALIDATIONS, affordable) if within_epochs else epochs
    epochs = max(budget - validations * one_validation, 0.0) * speed / max(train_tokens, 1)
    steps = int(epochs * train_tokens / TOKENS_PER_STEP)
    extra = max(int(validations - epochs), 1)  # validations beyond the per-epoch ones
    eval_every = max(steps // extra, MIN_EVAL_EVERY) if within_epochs else 0
    lr_patience = min(3, max(1, round(3 * validations / 100)))  # 3: JSB's, the most measured
    return Plan(embedding, hidden, speed, epochs, steps, eval_every, lr_patience, 4 * lr_patience)


def measure_throughput(vocab: int, seconds: float = 1.0) -> Callable:
    """`throughput(embedding, hidden)` measured: training and scoring tokens/s on random windows.

    The same shapes, optimiser and device as `lstm-music train` uses by default (all cores, or
    the GPU); the probe's few seconds are not taken from the training budget. On a machine that
    others share the plan is for the cores when free: a busy machine runs fewer epochs.
    """
    import torch
    import torch.nn.functional as F

    from lstm_music.model.lstm import LSTMModel, ModelConfig

    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.set_flush_denormal(True)  # as train does, and with as many threads as it takes
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    ids = torch.randint(0, vocab, (16, 129), generator=torch.Generator().manual_seed(0))
    ids = ids.to(device)

    def timed(step: Callable[[], None]) -> float:
        """Tokens/s of the fastest of a few rounds: a moment when others left the cores free."""
        step()  # warm-up
        best, deadline = 0.0, time.perf_counter() + seconds
        while best == 0.0 or time.perf_counter() < deadline:
            started = time.perf_counter()
            for _ in range(2):
                step()
            if device == "cuda":
                torch.cuda.synchronize()
            best = max(best, 2 * 16 * 128 / (time.perf_counter() - started))
        return best

    def throughput(embedding: int, hidden: tuple[int, ...]) -> tuple[float, float]:
        model = LSTMModel(ModelConfig(vocab, embedding, list(hidden), 0.3)).to(device)
        optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)

        def train_step() -> None:
            logits, _ = model(ids[:, :-1])
            loss = F.cross_entropy(logits.reshape(-1, vocab), ids[:, 1:].reshape(-1))
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()

        def score_step() -> None:
            with torch.no_grad():
                torch.log_softmax(model(ids[:, :-1])[0], dim=-1)

        model.train()
        train_speed = timed(train_step)
        model.eval()
        return train_speed, timed(score_step)

    return throughput


def guess_dataset(path: Path, rolls: dict[str, list[np.ndarray]]) -> str:
    """The name: `jsb` for JSB Chorales (by file name or its 229/76/77 pieces), else the stem."""
    sizes = tuple(len(rolls.get(split, [])) for split in ("train", "valid", "test"))
    return "jsb" if "jsb" in path.name.lower() or sizes == JSB_PIECES else path.stem.lower()


def to_midi(rolls: dict[str, list[np.ndarray]], work: Path, step: float) -> dict[str, int]:
    """Write the rolls as MIDI; time steps per split (to check the corpus against)."""
    write_split_midi(rolls, work / "midi", step)
    return {split: sum(len(roll) for roll in items) for split, items in rolls.items()}


def check_corpus(corpus: Path, steps: dict[str, int]) -> dict[str, int]:
    """Every time step of the .mat file must be a `Step` token of the corpus; tokens per split."""
    loaded = Corpus.load(corpus)
    tokens = {}
    for split, expected in steps.items():
        found = sum(piece.tokens.count("Step") for piece in loaded.split(split))
        if found != expected:
            sys.exit(f"{split}: {found} steps in the corpus, {expected} in the .mat file")
        tokens[split] = sum(len(piece.ids) + 1 for piece in loaded.split(split))  # and <eos>
    return tokens


def parse_args() -> tuple[argparse.Namespace, list[str]]:
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
    parser.add_argument(
        "--minutes", type=float, help="training budget, planned for (25; --quick: 1/3)"
    )
    parser.add_argument(
        "--recipe",
        choices=("plan", "jsb"),
        default="plan",
        help="plan: model and schedule planned for the data and budget; jsb: JSB's fixed recipe",
    )
    parser.add_argument("--dataset", dest="name", help="name for published figures (jsb)")
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
    parser.add_argument("--valid-only", action="store_true", help="never score the test split")
    return parser.parse_known_args()  # unknown flags go to `lstm-music train`


def main() -> None:
    args, extra = parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="polyphonic-"))
    started = time.perf_counter()
    rolls = load_piano_roll_mat(args.dataset)
    args.name = (args.name or guess_dataset(args.dataset, rolls)).lower()
    if args.quick:
        rolls = {split: items[:3] for split, items in rolls.items()}
    steps = to_midi(rolls, work, STEPS[args.step])
    corpus, run = work / "corpus", work / "run"
    lstm_music("prepare", str(work / "midi"), "--out", str(corpus), "--tokenizer", "grid",
               "--grid-step", args.step, "--max-silence", "0", "-q")  # fmt: skip
    tokens = check_corpus(corpus, steps)
    args.minutes = args.minutes or (20 / 60 if args.quick else 25.0)
    if args.recipe == "jsb":
        args.plan, recipe = None, [*JSB_RECIPE, *extra]
    else:
        throughput = measure_throughput(
            len(Corpus.load(corpus).vocabulary), seconds=0.3 if args.quick else 1.5
        )
        args.plan = plan_recipe(tokens["train"], tokens["valid"], args.minutes, throughput)
        recipe = [*args.plan.flags(), *args.plan.schedule_flags(), *extra]
    trained = lstm_music("train", str(corpus), "--out", str(run), "--max-minutes",
                         str(args.minutes), "--overwrite", "-q", *recipe)  # fmt: skip
    evaluations = {}
    splits = ("valid",) if args.valid_only else ("valid", "test")
    for mixture in dict.fromkeys(["off", args.transpose_mixture]):
        for split in splits:
            command = ["evaluate", str(run), str(corpus), "--split", split, "--json"]
            output = lstm_music(*command, f"--transpose-mixture={mixture}")
            evaluations[mixture, split] = json.loads(output)
    args.recipe_flags = recipe
    report(args, steps, trained, evaluations, time.perf_counter() - started)


def report(args, steps: dict[str, int], trained: str, evaluations: dict, seconds: float) -> None:
    print(
        f"dataset {args.dataset.name} ({args.name}), step {args.step}; time steps "
        + ", ".join(f"{split} {count:,}" for split, count in steps.items())
    )
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"wall time {seconds / 60:.1f} min in all"
    )
    if args.plan:
        print(args.plan.describe())
    print(trained.strip().splitlines()[0])
    flags = " ".join(args.recipe_flags)
    print(f"recipe: lstm-music train {flags} --max-minutes {args.minutes:g}")
    rows = []
    for (mixture, split), result in evaluations.items():
        if split != "valid":
            continue
        name = "model alone" if mixture == "off" else f"mixture over keys {mixture}"
        line = f"{name}: valid NLL per step {result['nll_per_step']:.3f}"
        test = evaluations.get((mixture, "test"))
        if test:
            line += (
                f"; test per token {test['nll_per_token']:.3f} nats, "
                f"top-1 accuracy {test['accuracy']:.3f}"
            )
            rows.append((f"lstm-music, {name} (first step unscored)", test["nll_per_step"]))
        print(line)
    if args.valid_only:  # the last valid figure: the mixture's unless it is off
        print(f"valid_nll_per_step={list(evaluations.values())[-1]['nll_per_step']:.4f}")
        return
    published = PUBLISHED.get(args.name, [])
    print(f"\n{'test NLL per time step (nats), lower is better':60} value")
    for name, value in [*published, *rows]:
        print(f"{name:60} {value:5.2f}")
    if not published:
        print(f"(no published figures known for {args.name!r}: see --dataset)")
    print(f"test_nll_per_step={rows[-1][1]:.4f}")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
