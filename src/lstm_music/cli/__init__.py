"""The `lstm-music` command: sub-commands parse flags and call library functions, nothing more.

Errors meant for users (`LstmMusicError`) are printed as one line with exit code 1; a usage
error exits 2 (argparse's convention): first what is wrong (for a mistyped flag or command, the
nearest real one), then one short usage line of the command at fault; Ctrl-C exits 130 without
a traceback.
"""

from __future__ import annotations

import argparse
import difflib
import itertools
import re
import signal
import sys
import time
from collections.abc import Iterable, Sequence
from typing import NoReturn

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
    runs_cmd,
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
    runs_cmd,
    render_cmd,
    serve_cmd,
)


def _shortened(message: str, longest: int = 80) -> str:
    """A message with any word over `longest` characters cut (a 5,000-digit number or a
    5,000-character path would fill the terminal): "'99999999999...' (5,002 characters)"."""

    def cut(match: re.Match) -> str:
        word = match.group(0)
        return f"{word[:12]}... ({len(word):,} characters)"

    return re.sub(rf"\S{{{longest + 1},}}", cut, message)


class CommandParser(argparse.ArgumentParser):
    """argparse that takes flags only as spelled and blames the (sub-)command they were given to.

    Prefix abbreviations are off: `--max-minute` is refused, not taken for `--max-minutes`.
    argparse leaves a sub-command's unknown flags to the top-level parser, which printed its own
    usage; here the command the flag was given to reports it, with its usage and the nearest
    real flag ("did you mean --seconds?"), even when another error (a missing argument) came
    first. An unknown command gets the nearest command's name.
    """

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)
        self._words: list[str] = []  # what this parser was last asked to parse, for error()

    def parse_known_args(self, args=None, namespace=None):  # argparse calls it for sub-commands
        self._words = list(sys.argv[1:] if args is None else args)
        return super().parse_known_args(args, namespace)

    def parse_args(self, args=None, namespace=None):
        namespace, extras = self.parse_known_args(args, namespace)
        if extras:  # leftovers of some command in the chain: the one that holds a typo reports
            chain = self._chosen_commands(namespace)
            owner = next((p for p in reversed(chain) if p._unknown_flags()), chain[-1])
            owner.error(f"unrecognized arguments: {' '.join(extras)}")
        return namespace

    def error(self, message: str) -> NoReturn:
        """The fault first, then one short usage line (the full one is --help's): a mistyped
        flag or command gets the nearest real one, any other error argparse's own words."""
        typos = self._unknown_flags()
        if typos:
            flags = [o for a in self._actions for o in a.option_strings if o.startswith("--")]
            message = "; ".join(f"unknown option {t}{_did_you_mean(t, flags)}" for t in typos)
        else:
            message = self._unknown_command_message() or f"error: {_shortened(message)}"
        self.exit(2, f"{self.prog}: {message}\n{self.short_usage()}\n")

    def short_usage(self) -> str:
        """ "usage: lstm-music train [CORPUS_DIR] [options] (see lstm-music train --help)"."""
        words = [self.prog]
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                words.append("COMMAND")
            elif not action.option_strings:
                name = action.metavar or action.dest
                words.append(f"[{name}]" if action.nargs in ("?", "*") else name)
        return f"usage: {' '.join(words)} [options] (see {self.prog} --help)"

    def _subcommands(self) -> argparse._SubParsersAction | None:
        return next((a for a in self._actions if isinstance(a, argparse._SubParsersAction)), None)

    def _own_words(self) -> list[str]:
        """The words meant for this parser itself: before `--`, and before any sub-command."""
        words = self._words[: self._words.index("--")] if "--" in self._words else self._words
        if self._subcommands() is None:
            return words
        return list(itertools.takewhile(lambda word: word.startswith("-"), words))

    def _unknown_flags(self) -> list[str]:
        known = {o for a in self._actions for o in a.option_strings}
        return [w.split("=", 1)[0] for w in self._own_words() if _is_unknown_flag(w, known)]

    def _unknown_command_message(self) -> str | None:
        """When the sub-command word given to this parser names none of its sub-commands."""
        subcommands = self._subcommands()
        own = self._own_words()
        if subcommands is None or len(own) == len(self._words):
            return None
        word, names = self._words[len(own)], list(subcommands.choices)
        if word in names:
            return None
        return (
            f"unknown command {word!r}{_did_you_mean(word, names)} (commands: {', '.join(names)})"
        )

    def _chosen_commands(self, namespace: argparse.Namespace) -> list[CommandParser]:
        """This parser and the sub-commands chosen below it, e.g. [lstm-music, corpus, info]."""
        chain = [self]
        while (action := chain[-1]._subcommands()) is not None:
            chosen = action.choices.get(getattr(namespace, action.dest, None))
            if not isinstance(chosen, CommandParser):
                break
            chain.append(chosen)
        return chain


def _is_unknown_flag(word: str, known: set[str]) -> bool:
    """True for a flag that `known` lacks; `-`, `-3`, `-0.5`, `-5:5` are values, not flags."""
    if not word.startswith("-") or len(word) < 2 or word[1] in "0123456789." or " " in word:
        return False
    if word.split("=", 1)[0] in known:
        return False
    return word.startswith("--") or word[:2] not in known  # `-ofile.mid`, `-qv` are known


def _did_you_mean(word: str, choices: Iterable[str]) -> str:
    """The flags a cut-short word begins (up to 3), else the nearest spelling, else nothing."""
    choices = list(choices)
    matches = [c for c in choices if c.startswith(word)]
    if not 1 <= len(matches) <= 3:
        matches = difflib.get_close_matches(word, choices, n=1)
    if not matches:
        return ""
    listed = matches[0] if len(matches) == 1 else f"{', '.join(matches[:-1])} or {matches[-1]}"
    return f"; did you mean {listed}?"


def build_parser() -> argparse.ArgumentParser:
    parser = CommandParser(
        prog="lstm-music",
        description="Learn the style of a folder of MIDI files with an LSTM and write new music.",
        epilog="Run `lstm-music COMMAND --help` for the flags of each command.",
    )
    parser.add_argument("--version", action="version", version=f"lstm-music {__version__}")
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, parser_class=CommandParser
    )
    for command in COMMANDS:
        command.add_parser(commands)
    return parser


def _flag_hint(parser: CommandParser, args: argparse.Namespace, setting: str | None) -> str:
    """ " (--max-notes)" for a `SettingError` about `max_notes`, when the command has that flag."""
    if not setting:
        return ""
    # a command whose flags are named otherwise than the fields says so with set_defaults
    flag = getattr(args, "setting_flags", {}).get(setting) or "--" + setting.replace("_", "-")
    flags = {
        option
        for command in parser._chosen_commands(args)
        for option in command._option_string_actions
    }
    return f" ({flag})" if flag in flags else ""


def main(argv: Sequence[str] | None = None) -> int:
    began = time.perf_counter()  # a command's time budget (train --max-minutes) counts from here
    parser = build_parser()
    args = parser.parse_args(argv)
    args.started_at = began
    try:
        return int(args.run(args) or 0)
    except LstmMusicError as error:
        hint = _flag_hint(parser, args, getattr(error, "setting", None))
        print(f"lstm-music {args.command}: error: {_shortened(str(error))}{hint}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as stop:  # Ctrl-C; or SIGTERM where a command turned it into one
        signum = getattr(stop, "signum", signal.SIGINT)
        word = "terminated" if signum == signal.SIGTERM else "interrupted"
        print(f"lstm-music {args.command}: {word}", file=sys.stderr)
        return 128 + signum
    except BrokenPipeError:  # output piped into `head` and closed early: not an error
        sys.stderr.close()
        return 0
    except OSError as error:  # the system refused a path (too long, no room, no permission)
        print(f"lstm-music {args.command}: error: {_os_error(error)}", file=sys.stderr)
        return 1


def _os_error(error: OSError) -> str:
    """ "NAME: File name too long", a long name cut (see `_shortened`)."""
    reason = error.strerror or str(error)
    return _shortened(f"{error.filename}: {reason}" if error.filename is not None else reason)


__all__ = ["CommandParser", "build_parser", "main"]
