"""Flag typos: the fault and the nearest flag first, then the command's short usage; no prefix
abbreviations."""

from __future__ import annotations

import argparse

import pytest

from lstm_music.cli import build_parser, main


def leaf_commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """(path, parser) for every command that takes flags, e.g. (("corpus", "info"), parser)."""
    subparsers = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subparsers:
        yield path, parser
    for action in subparsers:
        for name, sub in action.choices.items():
            yield from leaf_commands(sub, (*path, name))


def long_flags(parser: argparse.ArgumentParser) -> list[str]:
    flags = [o for a in parser._actions for o in a.option_strings if o.startswith("--")]
    return [f for f in flags if f != "--help"]


LEAVES = list(leaf_commands(build_parser()))
FLAGS = [(path, flag) for path, parser in LEAVES for flag in long_flags(parser)]


def param_id(value: object) -> str | None:
    if isinstance(value, tuple):
        return " ".join(value)
    return value if isinstance(value, str) else "parser"


def usage_error(argv: list[str], capsys) -> str:
    """Run the command, check it is refused as a usage error (2); return its stderr."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize(("path", "flag"), FLAGS, ids=param_id)
def test_no_prefix_abbreviation(path: tuple[str, ...], flag: str, capsys) -> None:
    """`--max-minute` was silently taken for `--max-minutes`: every prefix is now refused."""
    abbreviation = flag[:-1]
    parser = dict(LEAVES)[path]
    if abbreviation in parser._option_string_actions:
        pytest.skip(f"{abbreviation} is a flag of its own")
    err = usage_error([*path, abbreviation], capsys)
    assert f"usage: lstm-music {' '.join(path)}" in err
    suggestion = err.splitlines()[0].rsplit("did you mean ", 1)[1]
    assert flag in suggestion.removesuffix("?").replace(" or ", ", ").split(", ")


@pytest.mark.parametrize(("path", "parser"), LEAVES, ids=param_id)
def test_typo_gets_command_usage_and_suggestion(path, parser, capsys) -> None:
    flag = long_flags(parser)[0]
    typo = flag[:-2] + flag[-1]  # one letter dropped: --seconds -> --secons
    err = usage_error([*path, typo], capsys)
    command = f"lstm-music {' '.join(path)}"
    first, usage = err.splitlines()  # two lines: the fault, then the short usage
    assert first.startswith(f"{command}: unknown option {typo}; did you mean {flag}?")
    assert usage.startswith(f"usage: {command} ") and usage.endswith(f"(see {command} --help)")


def test_the_issue_example(capsys) -> None:
    err = usage_error(["generate", "--secnds", "30"], capsys)
    assert err.startswith("lstm-music generate: unknown option --secnds; did you mean --seconds?")
    err = usage_error(["generate", "-o", "x.mid", "--secnds", "30"], capsys)  # parses otherwise
    assert err.startswith("lstm-music generate: unknown option --secnds; did you mean --seconds?")
    err = usage_error(["train", "corpus", "--max-minute", "1"], capsys)
    assert err == (
        "lstm-music train: unknown option --max-minute; did you mean --max-minutes?\n"
        "usage: lstm-music train [CORPUS_DIR] [options] (see lstm-music train --help)\n"
    )
    err = usage_error(["generate", "--top-"], capsys)
    assert "unknown option --top-; did you mean --top-k or --top-p?" in err


def test_flag_with_value_and_no_close_match(capsys) -> None:
    err = usage_error(
        ["compare", "a.mid", "--reference", "c", "--threshold=0.3", "--zzz=1"], capsys
    )
    assert "usage: lstm-music compare" in err and "unknown option --zzz" in err
    assert "did you mean" not in err


def test_values_are_not_taken_for_flags(capsys) -> None:
    """A negative number is a value, not a mistyped flag; a stray word is named as such."""
    err = usage_error(["generate", "--seed", "-3", "--num", "2"], capsys)  # --out missing
    assert "the following arguments are required: --out" in err and "unknown option" not in err
    err = usage_error(["train", "c", "--transpose", "-5:5"], capsys)  # argparse's own message
    assert "argument --transpose: expected one argument" in err
    err = usage_error(["render", "a.mid", "b.mid"], capsys)  # a stray positional
    assert "usage: lstm-music render" in err and "unrecognized arguments: b.mid" in err


def test_top_level_typo_and_unknown_command(capsys) -> None:
    err = usage_error(["--verison"], capsys)
    assert "did you mean --version?" in err
    err = usage_error(["genrate", "--seconds", "3"], capsys)
    assert err.startswith("lstm-music: unknown command 'genrate'; did you mean generate?")
    assert err.splitlines()[1] == "usage: lstm-music COMMAND [options] (see lstm-music --help)"
    err = usage_error(["corpus", "inof", "x"], capsys)
    assert err.startswith("lstm-music corpus: unknown command 'inof'; did you mean info?")
    assert err.splitlines()[1].startswith("usage: lstm-music corpus COMMAND")


def test_flag_of_the_parent_command_is_placed(capsys) -> None:
    """`corpus --jsno info x`: the typo sits before `info`, so it is corpus's to report."""
    err = usage_error(["corpus", "--jsno", "info", "x"], capsys)
    assert "usage: lstm-music corpus" in err and "unknown option --jsno" in err


def test_a_setting_error_gets_the_flag_that_sets_it(tmp_path, capsys, monkeypatch) -> None:
    from lstm_music import cli
    from lstm_music.errors import SettingError

    def refuse(args):
        raise SettingError("the temperature must be positive, not 0", "temperature")

    args = build_parser().parse_args(["generate", "--out", str(tmp_path / "x.mid")])
    args.run = refuse
    monkeypatch.setattr(cli.CommandParser, "parse_args", lambda self, argv=None: args)
    assert main(["generate"]) == 1
    assert capsys.readouterr().err.strip().endswith("not 0 (--temperature)")


def test_a_setting_named_otherwise_than_its_flag_gets_the_right_flag(tmp_path) -> None:
    from lstm_music.cli import _flag_hint

    parser = build_parser()
    args = parser.parse_args(["train", str(tmp_path / "corpus"), "--out", str(tmp_path / "run")])
    assert _flag_hint(parser, args, "embedding_dim") == " (--embedding)"
    assert _flag_hint(parser, args, "hidden_sizes") == " (--hidden)"
    assert _flag_hint(parser, args, "max_minutes") == " (--max-minutes)"
    assert _flag_hint(parser, args, "no_such_setting") == ""
