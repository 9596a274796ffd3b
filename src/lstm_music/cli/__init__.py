"""The `lstm-music` command: sub-commands parse flags and call library functions, nothing more.

Errors meant for users (`LstmMusicError`) are printed as one line with exit code 1; a usage
error exits 2 (argparse's convention); Ctrl-C exits 130 without a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from lstm_music import __version__
from lstm_music.cli import (
    compare_cmd,
    corpus_cmd,
    demo_cmd,
    evaluate_cmd,
    generate_cmd,
    models_cmd,
    prepare_cmd,
    render_cmd,
    serve_cmd,
    train_cmd,
)
from lstm_music.errors import LstmMusicError

COMMANDS = (
    demo_cmd,
    prepare_cmd,
    corpus_cmd,
    train_cmd,
    generate_cmd,
    evaluate_cmd,
    compare_cmd,
    models_cmd,
    render_cmd,
    serve_cmd,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lstm-music",
        description="Learn the style of a folder of MIDI files with an LSTM and write new music.",
        epilog="Run `lstm-music COMMAND --help` for the flags of each command.",
    )
    parser.add_argument("--version", action="version", version=f"lstm-music {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except LstmMusicError as error:
        print(f"lstm-music {args.command}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"lstm-music {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and closed early: not an error
        sys.stderr.close()
        return 0


__all__ = ["build_parser", "main"]
