"""Every option of every command, given absurd numbers, is refused in one line or runs: no
traceback. The options are found by walking the argparse parsers, so a new option is covered
without touching this file; a numeric one (type int or float) must be refused by name for a
value no bound admits (1e308, nan, inf, 5,000 digits), before any file is read."""

from __future__ import annotations

import argparse
import contextlib
import io
from collections.abc import Iterator

import pytest
from conftest import random_melody, write_midi

from lstm_music.cli import build_parser, main

VALUES = ("0", "-1", "1e308", "nan", "inf", "9" * 5000)
NO_BOUND_ADMITS = ("1e308", "nan", "inf", "9" * 5000)


def options() -> Iterator[tuple[list[str], argparse.Action]]:
    """(command words, action) for every option taking a value, sub-commands included."""

    def walk(parser: argparse.ArgumentParser, words: list[str]):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    yield from walk(sub, [*words, name])
            elif action.option_strings and action.nargs != 0 and not action.choices:
                yield words, action

    yield from walk(build_parser(), [])


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, list[str]]:
    """What each command needs besides the option tried. Commands that check their numbers
    before reading their inputs get inputs that are not there (so a value let through ends in
    one line, quickly); evaluate, compare and render check theirs on real inputs."""
    folder = tmp_path_factory.mktemp("inputs")
    for seed in range(3):
        write_midi(folder / "midi" / f"{seed}.mid", random_melody(seed, 24))
    corpus = folder / "corpus"
    assert main(["prepare", str(folder / "midi"), "--out", str(corpus), "-q", "-j", "1"]) == 0
    midi = str(folder / "midi" / "0.mid")
    missing = str(folder / "missing")
    return {
        "demo": ["--model", missing + ".safetensors"],
        "prepare": [missing, "--out", str(folder / "out")],
        "train": [missing, "--out", str(folder / "run")],
        "generate": [missing + ".safetensors", "--out", str(folder / "g.mid")],
        "evaluate": ["base", str(corpus)],
        "compare": [midi, "--reference", str(corpus)],
        "render": [midi, "--wav", str(folder / "r.wav")],
        "corpus info": [str(corpus)],
    }


def run(argv: list[str]) -> tuple[int, list[str]]:
    """Exit code and the lines on stderr of `lstm-music ARGV`; a traceback fails the test."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(argv)
        except SystemExit as exit_:
            code = exit_.code
        except Exception as error:  # noqa: BLE001 - what the user would see as a traceback
            return 1, [f"Traceback: {type(error).__name__}: {str(error)[:200]}"]
    return int(code or 0), [line for line in err.getvalue().splitlines() if line.strip()]


def named(flag: str, line: str) -> bool:
    """The line names the option: `--grid-step`, or its words (grid step, grid_step)."""
    words = flag.lstrip("-")
    return any(form in line for form in (flag, words.replace("-", " "), words.replace("-", "_")))


@pytest.mark.parametrize("command", sorted({" ".join(w) for w, _ in options()}))
def test_every_option_refuses_absurd_numbers_in_one_line(
    command, inputs, tmp_path, monkeypatch
) -> None:
    import uvicorn

    monkeypatch.chdir(tmp_path)  # what an accepted value writes goes here
    monkeypatch.setattr(uvicorn.Server, "run", lambda self: None)  # serve: checked, not served
    words, failures = command.split(), []
    for _, action in [(w, a) for w, a in options() if w == words]:
        flag = action.option_strings[-1] if action.option_strings[-1].startswith("--") else (
            action.option_strings[0])  # fmt: skip
        numeric = action.type in (int, float)
        for value in VALUES:  # a path or name of 5,000 characters too: the system refuses it
            code, lines = run([*words, *inputs.get(command, []), f"{flag}={value}"])
            said = f"{flag}={value[:12]}: exit {code}, {lines[-3:]}"
            failures += [said] if not _fine(command, flag, numeric, value, code, lines) else []
    assert not failures, "\n".join(failures)


def _fine(command: str, flag: str, numeric: bool, value: str, code: int, lines: list[str]) -> bool:
    """Ran (a value some bound admits), or refused in one line naming a numeric option; the
    line starts with the command's words (`lstm-music corpus import: error:`)."""
    if any("Traceback" in line for line in lines):
        return False
    if code == 0:
        return not (numeric and value in NO_BOUND_ADMITS)
    if code not in (1, 2) or not lines or not lines[0].startswith(f"lstm-music {command}: error:"):
        return False
    # one line, nothing before it; a usage error (exit 2) adds one short usage line after it
    if len(lines) != 1 and not (code == 2 and len(lines) == 2 and lines[1].startswith("usage:")):
        return False
    if len(lines[0]) > 1000:  # a 5,000-digit value is not echoed whole
        return False
    return not (numeric and value in NO_BOUND_ADMITS) or named(flag, lines[0])


@pytest.mark.parametrize(
    "argv",
    [["serve", "--workers", "100000"], ["serve", "--queue", "10000000"],
     ["serve", "--history", "1000000000"], ["evaluate", "base", "--copy-check", "1000000"]],
)  # fmt: skip
def test_large_but_finite_counts_are_bounded(argv, inputs, tmp_path, monkeypatch) -> None:
    """Numbers that parse but no machine could honour (a hundred thousand threads) are
    refused in one line naming the option, before anything starts."""
    import uvicorn

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(uvicorn.Server, "run", lambda self: pytest.fail("served"))
    if argv[0] == "evaluate":
        argv = [*argv[:2], inputs["evaluate"][1], *argv[2:]]
    code, lines = run(argv)
    assert code == 1 and len(lines) == 1, lines
    assert named(argv[-2], lines[0]), lines
