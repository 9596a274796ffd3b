"""`lstm-music corpus info DIR`: what a prepared corpus holds."""

from __future__ import annotations

import argparse
import json

from lstm_music.cli.table import format_table


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "corpus",
        help="inspect a prepared corpus",
        description="Inspect a corpus made by `lstm-music prepare`.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    info = actions.add_parser(
        "info",
        help="pieces per split, tokens, vocabulary, skipped files",
        description="Pieces and tokens per split, vocabulary size, and every "
        "input file that was skipped or failed, with the reason.",
    )
    info.add_argument("corpus", metavar="CORPUS_DIR")
    info.add_argument("--json", action="store_true", help="machine-readable output")
    info.set_defaults(run=run_info)


def run_info(args: argparse.Namespace) -> int:
    from lstm_music.corpus import Corpus

    summary = Corpus.load(args.corpus).summary()
    if args.json:
        print(json.dumps(summary, indent=1))
        return 0
    rows = [(name, s["pieces"], s["tokens"], s["hours"]) for name, s in summary["splits"].items()]
    print(f"corpus {summary['path']}")
    print(
        f"tokenizer {summary['tokenizer']}, vocabulary {summary['vocabulary_size']} tokens, "
        f"{summary['files']} input files"
    )
    print(format_table(("split", "pieces", "tokens", "hours"), rows))
    problems = summary["problems"]
    if problems:
        print(f"\n{len(problems)} file(s) not used:")
        for problem in problems:
            print(f"  {problem['status']:8} {problem['source']}: {problem['reason']}")
    return 0
