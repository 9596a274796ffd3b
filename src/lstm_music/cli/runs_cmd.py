"""`lstm-music runs [DIR]`: the training runs under a folder, with their figures."""

from __future__ import annotations

import argparse
import json

from lstm_music.cli.table import format_table


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "runs",
        help="list the training runs under a folder: tokens, size, steps, validation loss",
        description="List the run folders that `lstm-music train` wrote under DIR (DIR itself "
        "included, down to 8 folders deep; hidden and linked folders are skipped), the most "
        "recently written first: tokenizer, parameters, LSTM sizes, training steps, the best "
        "validation loss (NLL in nats per token on the corpus's valid split; runs on "
        "different corpora do not compare) and when the run last wrote a file. A folder that "
        "cannot be used (no checkpoint yet, an unreadable config.json or checkpoint) is "
        "listed as damaged, with the reason. A listed run's folder is a model for `generate` "
        "and `evaluate`; `serve --runs DIR` offers them all on the web page.",
    )
    parser.add_argument(
        "folder",
        nargs="?",
        default="runs",
        metavar="DIR",
        help="the folder to search (default: ./runs, where the README's commands write runs)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="machine-readable output: one object per run, all its figures, the time in ISO 8601",
    )
    parser.set_defaults(run=run_runs)


def run_runs(args: argparse.Namespace) -> int:
    from lstm_music.model.runs import list_runs

    runs = list_runs(args.folder)
    if args.json:
        print(json.dumps([run.to_dict() for run in runs], indent=1))
        return 0
    rows = [
        (
            run.name,
            "damaged" if run.damaged else run.tokenizer or "-",
            _parameters(run.parameters),
            "-".join(str(size) for size in run.hidden_sizes) or "-",
            "-" if run.steps is None else run.steps,
            "-" if run.best_valid_loss is None else f"{run.best_valid_loss:.3f}",
            "-" if run.updated is None else f"{run.updated:%Y-%m-%d %H:%M}",
        )
        for run in runs
    ]
    columns = ("run", "tokens", "parameters", "LSTM", "steps", "valid NLL/token", "updated")
    print(format_table(columns, rows))
    for run in runs:
        if run.damaged:
            print(f"{run.name}: damaged: {run.damaged}")
    return 0


def _parameters(count: int | None) -> str:
    """ "1.9 M", "23.9 k": a model's size at a glance."""
    if count is None:
        return "-"
    return f"{count / 1e6:.1f} M" if count >= 1e6 else f"{count / 1e3:.1f} k"
