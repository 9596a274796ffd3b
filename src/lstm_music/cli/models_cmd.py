"""`lstm-music models`: the models shipped in the package, and their model cards."""

from __future__ import annotations

import argparse
import json

from lstm_music.cli.table import format_table


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "models",
        help="list the models shipped in the package",
        description="List the models shipped inside lstm-music (usable by name wherever a "
        "checkpoint is asked for, e.g. `lstm-music generate bach-chorales`); with a NAME, "
        "print that model's card: data, licence, training command, held-out figures.",
    )
    parser.add_argument("name", nargs="?", metavar="NAME", help="print this model's card")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(run=run_models)


def run_models(args: argparse.Namespace) -> int:
    from lstm_music.model.shipped import shipped_model, shipped_models

    if args.name:
        model = shipped_model(args.name)
        if args.json:
            print(json.dumps(model.describe(), indent=1))
        else:
            print(model.card.read_text(encoding="utf-8") if model.card else model.describe())
        return 0
    described = [model.describe() for model in shipped_models()]
    if args.json:
        print(json.dumps(described, indent=1))
        return 0
    if not described:
        print("no models are shipped in this installation")
        return 0
    rows = [
        (
            d["name"] + (" (default)" if d["default"] else ""),
            d["tokenizer"],
            f"{d['parameters'] / 1e6:.1f} M",
            f"{d['megabytes']:.1f} MB",
            *("-" if d[key] is None else f"{d[key]:.3f}" for key in ("valid_loss", "test_loss")),
        )
        for d in described
    ]
    columns = ("model", "tokens", "parameters", "size", "valid NLL/token", "test NLL/token")
    print(format_table(columns, rows))
    for d in described:
        print(f"\n{d['name']}: {d['summary']}")
    print("\n`lstm-music models NAME` prints a model's card.")
    return 0
