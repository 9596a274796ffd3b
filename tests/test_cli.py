"""The command line: every sub-command explains itself; TOML settings; the entry point works."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import random_melody, write_midi

from lstm_music.cli import build_parser, main
from lstm_music.corpus.store import Corpus


def subcommands(parser) -> list[list[str]]:
    """Every command path, e.g. ["prepare"], ["corpus", "info"]."""
    paths = []
    for action in parser._subparsers._group_actions:
        for name, sub in action.choices.items():
            paths.append([name])
            if sub._subparsers:
                paths += [[name, *rest] for rest in subcommands(sub)]
    return paths


@pytest.mark.parametrize("path", subcommands(build_parser()), ids=" ".join)
def test_every_command_has_help(path: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*path, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "usage: lstm-music" in text and len(text) > 200


def test_console_script_runs() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "lstm_music", "--version"], capture_output=True, text=True
    )
    assert result.returncode == 0 and result.stdout.startswith("lstm-music ")


def test_toml_config_and_flag_precedence(tmp_path: Path) -> None:
    for i in range(6):
        write_midi(tmp_path / "in" / f"{i}.mid", random_melody(i))
    config = tmp_path / "prepare.toml"
    config.write_text(
        f'[prepare]\ninputs = ["{tmp_path / "in"}"]\nout = "{tmp_path / "c"}"\n'
        'tokenizer = "tsd"\nvalid_fraction = 0.5\n'
    )
    assert main(["prepare", "--config", str(config), "-q", "--valid-fraction", "0.34"]) == 0
    corpus = Corpus.load(tmp_path / "c")
    assert corpus.tokenizer_config["tokenizer"] == "tsd"
    assert len(corpus.split("valid")) == 2  # the flag (0.34 of 6) beat the file (0.5)
    assert corpus.meta["config"]["valid_fraction"] == 0.34


def test_unknown_toml_setting_is_named(tmp_path: Path, capsys) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[prepare]\ninputs = ["x"]\nout = "y"\ntokeniser = "remi"\n')
    assert main(["prepare", "--config", str(config)]) == 1
    assert "unknown setting 'tokeniser'" in capsys.readouterr().err


def test_corpus_info(tmp_path: Path, capsys) -> None:
    write_midi(tmp_path / "in" / "a.mid", random_melody(1))
    (tmp_path / "in" / "b.mid").write_bytes(b"junk")
    main(["prepare", str(tmp_path / "in"), "--out", str(tmp_path / "c"), "-q"])
    capsys.readouterr()
    assert main(["corpus", "info", str(tmp_path / "c")]) == 0
    text = capsys.readouterr().out
    assert "train" in text and "b.mid: not a MIDI file" in text
    assert main(["corpus", "info", str(tmp_path / "nothing")]) == 1
    assert "no corpus at" in capsys.readouterr().err


def test_import_is_light_and_api_names_resolve() -> None:
    """`import lstm_music` loads neither torch nor miditok; API names are functions/classes."""
    code = (
        "import sys, lstm_music;"
        "assert 'torch' not in sys.modules and 'miditok' not in sys.modules;"
        "import lstm_music.generation.generate, lstm_music.training.run;"
        "from lstm_music import generate, load_checkpoint, Corpus, prepare;"
        "assert callable(generate) and generate.__name__ == 'generate'"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("path", subcommands(build_parser()), ids=" ".join)
def test_a_usage_error_is_two_short_lines(path: list[str], capsys) -> None:
    """The fault first, then one short usage line: not argparse's 20-line usage block above it."""
    with pytest.raises(SystemExit) as exit_info:
        main([*path, "--no-such-flag"])
    assert exit_info.value.code == 2
    command = " ".join(["lstm-music", *path])
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith(f"{command}: unknown option --no-such-flag")
    assert lines[1].startswith(f"usage: {command}") and lines[1].endswith(f"{command} --help)")
