"""The run folder's owner (`lstm_music.model.runs`) and `lstm-music runs`: every run folder under a
folder listed with its figures, damaged and hostile folders listed with the reason, never a crash.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from lstm_music.cli import main
from lstm_music.errors import LstmMusicError
from lstm_music.model import runs
from lstm_music.model.header import read_checkpoint_header
from lstm_music.web.catalog import run_metrics


@pytest.fixture
def folder(tiny_runs: Path, tmp_path: Path) -> Path:
    """A copy of the shared tiny runs (their times set here: the shared folder stays as it is),
    plus the damaged and hostile run folders a user's disk can hold."""
    root = tmp_path / "runs"
    shutil.copytree(tiny_runs, root, symlinks=True)
    for age, name in enumerate(("tiny", "nested/again", "exports", "junk")):
        for file in (root / name).iterdir():
            os.utime(file, (1_700_000_000 - 3600 * age, 1_700_000_000 - 3600 * age))
    half = root / "half"  # killed before its first save
    half.mkdir()
    (half / "config.json").write_text('{"train": {"preset": "default"}, "corpus": "c"}')
    crafted = root / "crafted"
    shutil.copytree(root / "tiny", crafted)
    (crafted / "best.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}")
    piped = root / "piped"
    shutil.copytree(root / "tiny", piped)
    (piped / "config.json").unlink()
    os.mkfifo(piped / "config.json")
    os.mkfifo(piped / "metrics.csv.new")  # not a run file: never opened
    deep = root / "deep"
    shutil.copytree(root / "tiny", deep)
    (deep / "config.json").write_text("[" * 200_000)
    (deep / "metrics.csv").write_bytes(b"step,valid_loss\n\xff\xfe,\x00\n")
    evil = root / "evil\nrun \x1b[31m"
    evil.mkdir()
    (evil / "config.json").write_text("[1, 2]")
    os.utime(evil / "config.json", (2**62, 2**62))  # far ahead (ext4 keeps 2446)
    (root / "linked").symlink_to(root / "tiny", target_is_directory=True)
    return root


def test_runs_are_listed_with_their_figures(folder: Path) -> None:
    listed = {run.name: run for run in runs.list_runs(folder)}
    assert set(listed) == {"tiny", "nested/again", "half", "crafted", "piped", "deep",
                           "evil\\nrun \\x1b[31m"}  # fmt: skip
    tiny = listed["tiny"]
    header = read_checkpoint_header(folder / "tiny" / "best.safetensors")
    assert (tiny.tokenizer, tiny.hidden_sizes) == ("remi", (32,))
    assert tiny.parameters == header.parameters
    assert tiny.steps == 3 and tiny.damaged is None and tiny.preset == "default"
    assert tiny.corpus and Path(tiny.corpus).name == "corpus"
    log = runs.read_metrics_log(folder / "tiny" / "metrics.csv")
    assert tiny.best_valid_loss == log.best_valid_loss > 0
    assert run_metrics(folder / "tiny" / "metrics.csv")["best valid loss"] == round(
        tiny.best_valid_loss, 4
    )  # the web page and the listing show one figure
    again = listed["nested/again"]  # best.safetensors and metrics.csv only: no config, fine
    assert again.damaged is None and again.corpus is None and again.steps == 3
    assert again.updated and tiny.updated and tiny.updated > again.updated


def test_damaged_and_hostile_folders_are_listed_with_the_reason(folder: Path) -> None:
    listed = {run.name: run for run in runs.list_runs(folder)}
    assert listed["half"].damaged == "no best.safetensors or last.safetensors: nothing saved yet"
    assert listed["half"].preset == "default"
    assert listed["crafted"].damaged.startswith("best.safetensors: ")
    piped = listed["piped"]
    assert piped.damaged == "config.json: not a regular file (a named pipe)"
    assert piped.tokenizer == "remi"  # what could be read still is
    deep = listed["deep"]
    assert deep.damaged == "config.json: nested too deep: not one that train wrote"
    assert deep.steps == 3  # from the checkpoint: the garbled metrics.csv is passed over
    evil = listed["evil\\nrun \\x1b[31m"]
    assert "config.json: not a JSON object; no best.safetensors" in evil.damaged
    assert all("\n" not in run.name and "\x1b" not in run.name for run in listed.values())


def test_the_newest_run_comes_first(folder: Path) -> None:
    later = 1_800_000_000
    os.utime(folder / "nested" / "again" / "metrics.csv", (later, later))
    names = [run.name for run in runs.list_runs(folder)]
    assert names.index("nested/again") < names.index("tiny")


def test_a_time_no_calendar_holds_is_no_time(tiny_runs: Path, monkeypatch) -> None:
    class Calendar:
        @staticmethod
        def fromtimestamp(seconds: float):
            raise OverflowError("timestamp out of range for platform time_t")

    monkeypatch.setattr(runs, "datetime", Calendar)
    assert runs.summarise_run(tiny_runs / "tiny", "tiny").updated is None


def test_a_run_folder_lists_itself(tiny_runs: Path) -> None:
    (only,) = runs.list_runs(tiny_runs / "tiny")
    assert only.name == "tiny" and only.damaged is None


def test_the_cli_prints_a_table_and_json(folder: Path, capsys) -> None:
    assert main(["runs", str(folder)]) == 0
    out = capsys.readouterr().out
    header, rule, *rows = out.splitlines()
    assert header.split()[:3] == ["run", "tokens", "parameters"] and set(rule) <= {"-", " "}
    tiny = next(row for row in rows if row.startswith("tiny "))
    assert "remi" in tiny and "23.9 k" in tiny and " 3 " in tiny
    assert "half: damaged: no best.safetensors" in out and "\x1b" not in out
    assert main(["runs", str(folder), "--json"]) == 0
    listed = {run["name"]: run for run in json.loads(capsys.readouterr().out)}
    assert listed["tiny"]["hidden_sizes"] == [32] and listed["tiny"]["steps"] == 3
    assert listed["tiny"]["updated"].startswith("20") and listed["tiny"]["damaged"] is None
    assert listed["piped"]["path"] == str(folder / "piped")


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda tmp: tmp / "missing", "no folder "),
        (lambda tmp: tmp, "no training runs in "),
        (lambda tmp: Path(shutil.copy(__file__, tmp / "file.py")), "is not a folder"),
    ],
    ids=["missing", "empty", "a file"],
)
def test_the_cli_says_in_one_line_what_is_wrong(make, expected, tmp_path, capsys) -> None:
    (tmp_path / "corpus").mkdir()  # a folder that holds no run
    (tmp_path / "corpus" / "corpus.json").write_text("{}")
    assert main(["runs", str(make(tmp_path))]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert captured.err.startswith("lstm-music runs: error: ") and expected in captured.err


def test_config_readers_refuse_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"corpus": 3}')
    assert runs.read_config(tmp_path) == {"corpus": 3} and runs.run_corpus(tmp_path) is None
    (tmp_path / "config.json").write_bytes(b" " * (runs.MAX_CONFIG + 1))
    with pytest.raises(LstmMusicError, match=r"over 1,000,000 bytes.*a training run\?$"):
        runs.read_config(tmp_path)
    (tmp_path / "config.json").write_text('["not", "settings"]')
    with pytest.raises(LstmMusicError, match="not a JSON object"):
        runs.read_config(tmp_path)
    with pytest.raises(LstmMusicError, match="No such file or directory"):
        runs.read_config(tmp_path / "nothing")
    assert runs.run_corpus(tmp_path) is None and runs.run_corpus(None) is None


def test_the_metrics_log_takes_finite_figures(tmp_path: Path) -> None:
    path = tmp_path / "metrics.csv"
    path.write_text(
        "step,epoch,seconds,train_loss,valid_loss\n"
        "1,0.5,2.0,4.0,\n2,1,4.5,3.0,nan\n3,1,inf,2.5,2.75\n4,2,9.0,2.0,3.5\n"
    )
    log = runs.read_metrics_log(path)
    assert (log.steps, log.epochs, log.seconds) == (4, 2, 9.0)
    assert (log.best_valid_loss, log.last_valid_loss, log.last_train_loss) == (2.75, 3.5, 2.0)
    assert runs.read_metrics_log(tmp_path / "none.csv") == runs.MetricsLog()


def test_training_clears_exactly_the_files_the_owner_names(tmp_path: Path) -> None:
    from lstm_music.training.runfiles import clear_run, set_aside

    for name in (*runs.RUN_FILES, "notes.txt", "best.before-restart.safetensors"):
        (tmp_path / name).write_text("x")
    assert set_aside(tmp_path) == ["best.before-restart-2.safetensors",
                                   "last.before-restart-2.safetensors"]  # fmt: skip
    clear_run(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "best.before-restart-2.safetensors", "best.before-restart.safetensors",
        "last.before-restart-2.safetensors", "notes.txt"]  # fmt: skip
