"""`lstm-music train`: a prepared corpus -> a run folder with checkpoints."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from lstm_music.cli.report_view import report_lines
from lstm_music.cli.table import format_table
from lstm_music.errors import LstmMusicError
from lstm_music.model.runs import BEST_CHECKPOINT, LAST_CHECKPOINT, REPORT_FILE, read_config
from lstm_music.training.settings import LR_SCHEDULES, PRESETS

DESCRIPTION = """\
Train an LSTM on a corpus made by `lstm-music prepare`. Every token of every training piece is a
target; the hidden state is carried from one window of a piece to the next (truncated BPTT).
After each epoch the model is scored on the held-out (valid) pieces; RUN_DIR gets best.safetensors
(lowest validation loss; the last checkpoint when the corpus has no validation pieces),
last.safetensors, train_state.safetensors (for --resume), metrics.csv, loss.png and config.json.
--max-minutes covers the whole run, from the command's start to its last line: training stops
early enough for the closing validation, the plot and the closing report, and the report is cut
(fewer tokens scored, no copy check, or none at all) to fit what is left.

Ctrl-C or SIGTERM stops at the next step with a resumable state saved (a second Ctrl-C stops at
once); a resumable state is also saved at least every 2 minutes, mid-epoch if need be.

Presets: `default` (what held-out measurements favour on a CPU), `seed` (the blog's LSTM
512 -> 256, dropout 0.3, 100-token windows, Adam 1e-3, no transposition), `finetune` (the default
with 10 warm-up steps, chosen on held-out folders: the default with --init) and `small` (the
default with the AWD-LSTM regularisers on, for folders of 20-200 pieces that a model learns by
heart; not yet tuned: benchmarks/regularisation.py measures it on your folders).
Settings resolve as: preset < --config FILE.toml ([train] table) < flags.

Fine-tuning: --init MODEL starts from a trained model (a shipped name such as `base`, see
`lstm-music models`; a .safetensors file; or a run folder) instead of from nothing: the way to
get music that sounds like a small folder in minutes on a CPU. The corpus must be prepared with
the model's tokenizer settings (the defaults, for the shipped base model); the model's sizes
come from it; the run records its name and sha256. --init auto scores the corpus's valid split
with every shipped model whose tokens fit, prints the table and starts from the lowest NLL.

Several processes: torchrun --nproc-per-node 2 -m lstm_music train CORPUS --out RUN_DIR
"""

# flag name -> TrainConfig field, for flags that map one to one
FIELDS = {
    "embedding": "embedding_dim", "dropout": "dropout", "window": "window",
    "batch_size": "batch_size", "transpose": "transpose", "optimizer": "optimizer", "lr": "lr",
    "weight_decay": "weight_decay", "warmup": "warmup_steps", "clip": "clip",
    "lr_decay": "lr_decay", "patience": "patience", "epochs": "epochs", "max_steps": "max_steps",
    "max_minutes": "max_minutes", "eval_every": "eval_every", "seed": "seed", "device": "device",
    "threads": "threads", "lr_patience": "lr_patience", "lr_schedule": "lr_schedule",
    "velocity_shift": "velocity_shift",
    "velocity_jitter": "velocity_jitter", "duration_jitter": "duration_jitter",
    "onset_jitter": "onset_jitter",
    "weight_drop": "weight_drop",
    "locked_dropout": "locked_dropout", "input_dropout": "input_dropout",
    "embedding_dropout": "embedding_dropout", "tie_weights": "tie_weights", "average": "average",
}  # fmt: skip
BUDGETS = ("epochs", "max_steps", "max_minutes", "patience", "eval_every", "device", "threads")


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "train",
        help="train a model on a corpus",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("corpus", nargs="?", metavar="CORPUS_DIR", help="from `lstm-music prepare`")
    parser.add_argument("--out", "-o", metavar="RUN_DIR", help="run folder to create")
    parser.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue this run where it left off (weights, optimizer, schedule, RNG, step, "
        "all in train_state.safetensors; a run killed before its first save starts over); "
        "budget flags may extend it",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the run already in RUN_DIR (its checkpoints are deleted)",
    )
    parser.add_argument(
        "--init",
        metavar="MODEL",
        help="fine-tune: start from this model's weights (shipped name, checkpoint or run "
        "folder; `auto`: every shipped model is scored on the corpus's valid split, the table "
        "printed, and the best taken); implies --preset finetune unless a preset is named",
    )
    parser.add_argument("--preset", choices=tuple(PRESETS), help="starting settings")
    parser.add_argument("--config", metavar="FILE.toml", help="settings ([train] table)")
    model = parser.add_argument_group("model")
    model.add_argument(
        "--embedding",
        type=int,
        help="embedding width (256; 0 = the vocabulary size, like a one-hot input)",
    )
    model.add_argument("--hidden", help="LSTM layer sizes, e.g. 512 or 512,256")
    model.add_argument("--dropout", type=float, help="dropout (0.3)")
    regular = parser.add_argument_group(
        "small-data regularisers (AWD-LSTM; all off by default, on in --preset small)"
    )
    regular.add_argument(
        "--weight-drop",
        type=float,
        help="DropConnect on the recurrent weights, one mask per window: the LSTM cannot lean "
        "on single connections to replay the training pieces (0 = off; 0.3 in small)",
    )
    regular.add_argument(
        "--locked-dropout",
        action=argparse.BooleanOptionalAction,
        help="one dropout mask per sequence for all its steps, as an RNN needs (variational "
        "dropout), instead of a new one per step",
    )
    regular.add_argument(
        "--input-dropout",
        type=float,
        help="dropout on the embedding's output, before the first layer (0 = off; 0.2 in small)",
    )
    regular.add_argument(
        "--embedding-dropout",
        type=float,
        help="drop whole tokens from the embedding (everywhere they occur in a window), so "
        "no single token is relied on (0 = off; 0.1 in small)",
    )
    regular.add_argument(
        "--tie-weights",
        action=argparse.BooleanOptionalAction,
        help="the output layer shares the embedding's weights: fewer parameters to overfit "
        "with; needs --embedding equal to the last --hidden size",
    )
    data = parser.add_argument_group("data")
    data.add_argument("--window", type=int, help="tokens per BPTT window (128)")
    data.add_argument("--batch-size", type=int, help="windows per step, per process (32)")
    data.add_argument(
        "--transpose",
        help="random transposition range in semitones, e.g. --transpose=-5..6 (write the = "
        "0 = off (default -5..6 for tokenizers with pitches)",
    )
    data.add_argument(
        "--velocity-shift",
        type=int,
        help="move each piece's velocities by a random level of up to N bins (0 = off)",
    )
    data.add_argument(
        "--velocity-jitter",
        type=int,
        help="and each note's by up to N bins more (0 = off): for collections played evenly",
    )
    data.add_argument(
        "--duration-jitter",
        type=int,
        help="hold each note up to N duration bins shorter or longer (0 = off): for scores, "
        "whose notes last exactly their written value",
    )
    data.add_argument(
        "--onset-jitter",
        type=int,
        help="start each chord or note up to N grid steps (1/8 beat with the default REMI) "
        "early or late where the bar's order allows (0 = off; REMI): for scores, whose notes "
        "fall exactly on the beat",
    )
    optim = parser.add_argument_group("optimisation")
    optim.add_argument("--optimizer", choices=("adamw", "adam"))
    optim.add_argument("--lr", type=float, help="learning rate (3e-3)")
    optim.add_argument(
        "--weight-decay", type=float, help="AdamW's decoupled weight decay (0.01; 0.1 in small)"
    )
    optim.add_argument(
        "--average",
        type=float,
        help="keep a moving average of the weights with this decay per step (e.g. 0.999), "
        "validate and save it: smoother than the last step's weights (0 = off)",
    )
    optim.add_argument("--warmup", type=int, help="linear warm-up steps (50)")
    optim.add_argument("--clip", type=float, help="gradient norm clip, 0 = off (1.0)")
    optim.add_argument(
        "--lr-decay",
        type=float,
        help="multiply the learning rate by this when validation stalls (0.5)",
    )
    optim.add_argument(
        "--lr-patience", type=int, help="validations without improvement before each decay (1)"
    )
    optim.add_argument(
        "--lr-schedule",
        choices=LR_SCHEDULES,
        help="budget: also let the rate fall linearly towards zero over the run's budget (the "
        "first of --max-minutes, --max-steps and --epochs to end), so a run cut by its time "
        "ends annealed; plateau: only the decays above (plateau)",
    )
    budget = parser.add_argument_group("budgets (training stops at the first reached)")
    budget.add_argument("--epochs", type=int, help="(30)")
    budget.add_argument("--max-steps", type=int, help="optimiser steps (0 = no limit)")
    budget.add_argument("--max-minutes", type=float, help="wall-clock minutes (0 = no limit)")
    budget.add_argument(
        "--patience",
        type=int,
        help="stop after this many validations without improvement (4; 0 = never)",
    )
    budget.add_argument(
        "--eval-every", type=int, help="also validate every N steps (0 = per epoch)"
    )
    run = parser.add_argument_group("run")
    run.add_argument("--seed", type=int, help="random seed: same seed, same machine, same run (0)")
    run.add_argument("--device", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:1, mps")
    run.add_argument("--threads", type=int, help="CPU threads (0 = all cores)")
    run.add_argument("--no-amp", action="store_true", help="no mixed precision on CUDA")
    run.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    run.add_argument(
        "--no-report",
        action="store_true",
        help="skip the closing report (held-out bits per note against a uniform guess, a "
        "unigram model and the base model; the train/held-out gap; a copy check), kept in "
        "RUN_DIR/report.json",
    )
    setting_flags = {field: "--" + flag.replace("_", "-") for flag, field in FIELDS.items()}
    setting_flags["hidden_sizes"] = "--hidden"
    parser.set_defaults(run=run_train, setting_flags=setting_flags)


def _flags(args: argparse.Namespace) -> dict:
    flags = {field: getattr(args, flag) for flag, field in FIELDS.items()}
    if args.hidden is not None:
        try:
            flags["hidden_sizes"] = [int(size) for size in args.hidden.split(",")]
        except ValueError as error:
            raise LstmMusicError("--hidden takes sizes like 512 or 512,256") from error
    if args.no_amp:
        flags["amp"] = False
    if args.init is not None:
        if args.hidden is not None or args.embedding is not None:
            raise LstmMusicError("--init takes the model's sizes: drop --hidden and --embedding")
        flags["init"] = args.init
    return flags


def run_train(args: argparse.Namespace) -> int:
    from lstm_music.training.interrupt import StopSignals

    with StopSignals():  # SIGTERM during start-up: one word, not a silent exit
        return _run_train(args)


def _run_train(args: argparse.Namespace) -> int:
    from lstm_music.training.finetune import AUTO, TokenizerMismatch
    from lstm_music.training.interrupt import TrainingInterrupted
    from lstm_music.training.run import train

    config, corpus, run_dir = _config(args)
    try:
        if config.init == AUTO and not args.resume:
            config = replace(config, init=_auto_init(corpus))
        result = train(
            corpus,
            run_dir,
            config,
            resume=bool(args.resume),
            progress=not args.quiet,
            overwrite=args.overwrite,
            notify=_note,
            on_epoch=print,
            report=not args.no_report,
            started_at=getattr(args, "started_at", None),
        )
    except TokenizerMismatch as error:
        settings = error.prepare_settings.items()
        prepare_flags = " ".join(_prepare_flag(key, value) for key, value in settings)
        raise LstmMusicError(
            f"{error}: lstm-music prepare FOLDER --out CORPUS_DIR {prepare_flags}".rstrip()
        ) from error
    except TrainingInterrupted as stop:
        resume = f"; resume with: lstm-music train --resume {stop.run_dir}"
        _note(f"{stop}{resume if stop.step is not None else ''}")
        return 128 + stop.signum
    _summary(result)
    if args.no_report:  # a report of an earlier leg of this run would describe other weights
        Path(run_dir, REPORT_FILE).unlink(missing_ok=True)
    if result.report is not None:
        print("\n".join(report_lines(result.report)))
    return 0


def _config(args: argparse.Namespace):
    """The run's settings, its corpus and its run folder, from the flags (and a resumed run's
    config.json)."""
    from lstm_music.settings import build_config, load_toml
    from lstm_music.training.settings import FINE_TUNE_PRESET, TrainConfig, preset_layer

    flags = _flags(args)
    if args.resume and args.init:
        raise LstmMusicError("--init starts a run; a resumed run keeps what it started from")
    if args.resume:
        saved = read_config(args.resume)
        extend = {key: value for key, value in flags.items() if key in BUDGETS}
        config = build_config(TrainConfig, saved["train"], extend)
        return config, args.corpus or saved["corpus"], args.resume
    if not args.corpus or not args.out:
        raise LstmMusicError("name a CORPUS_DIR and --out RUN_DIR (or --resume RUN_DIR)")
    toml = load_toml(args.config, "train") if args.config else {}
    starts_from = flags.get("init") or toml.get("init")
    preset = args.preset or toml.get("preset", FINE_TUNE_PRESET if starts_from else "default")
    config = build_config(TrainConfig, preset_layer(preset), toml, flags)
    return config, args.corpus, args.out


def _auto_init(corpus_path: str) -> str:
    """`--init auto`: every shipped model scored zero-shot on the corpus, the table printed,
    the best one's name returned."""
    from lstm_music.corpus.store import Corpus
    from lstm_music.training.finetune import choose_base

    choice = choose_base(Corpus.load(corpus_path))
    print(f"--init auto: the shipped models scored zero-shot on the {choice.split} split "
          f"({choice.pieces} pieces, {choice.tokens:,} tokens; lower is better)")  # fmt: skip
    rows = []
    for score in choice.scores:
        if score.refused:
            rows.append([score.name, "-", "-", f"cannot: {score.refused}"])
            continue
        bits = "-" if score.bits_per_note is None else f"{score.bits_per_note:.3f}"
        chosen = "chosen" if score.name == choice.chosen else ""
        rows.append([score.name, f"{score.nll_per_token:.3f}", bits, chosen])
    print(format_table(["model", "nats/token", "bits/note", ""], rows))
    print(f"starting from {choice.chosen}\n")
    return choice.chosen


def _prepare_flag(key: str, value) -> str:
    """A `prepare` flag for one of its settings: tracks="merge" -> "--tracks merge"."""
    flag = "--" + key.replace("_", "-")
    if isinstance(value, bool):
        return flag if value else ""
    if isinstance(value, list):
        return f"{flag} {','.join(str(item) for item in value)}" if value else ""
    return f"{flag} {value}"


def _note(text: str) -> None:
    print(f"lstm-music train: {text}", file=sys.stderr)


def _summary(result) -> None:
    from lstm_music.training.loop import format_epochs

    best = "-" if result.best_valid_loss is None else f"{result.best_valid_loss:.4f}"
    print(
        f"trained {result.steps} steps ({format_epochs(result.epochs)} epochs) in "
        f"{result.seconds:.0f} s, stopped by {result.stopped_by}; best validation loss {best} "
        f"nats/token; batches {result.batch_utilisation:.0%} full"
    )
    best_file = result.run_dir / BEST_CHECKPOINT
    if result.best_is_last:
        best_file = f"{best_file} (no validation pieces: the same as last)"
    print(f"checkpoints: {best_file}, {result.run_dir / LAST_CHECKPOINT}")
