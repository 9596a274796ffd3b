"""Named pipes, folders and devices where a file is read: one line, never a hang (issue 19.7).

Reading a named pipe blocks until someone writes to it, so each command runs in a child process
under an alarm: a regression fails the case (as "hung") instead of hanging the test run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import random_melody, write_midi

from lstm_music.cli import main
from lstm_music.errors import LstmMusicError
from lstm_music.fsutil import not_regular, require_regular_file

PROBE = """
import contextlib, io, json, signal, sys
from lstm_music.cli import main

class Hung(BaseException):
    pass

def alarm(*_):
    raise Hung()

signal.signal(signal.SIGALRM, alarm)
results = {}
for name, argv in json.loads(sys.argv[1]).items():
    err = io.StringIO()
    signal.alarm(60)  # a refusal takes well under a second once the model is loaded
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = main(argv)
    except Hung:
        code = "hung"
    except SystemExit as error:
        code = error.code
    finally:
        signal.alarm(0)
    results[name] = [code, err.getvalue()]
print(json.dumps(results))
"""


@pytest.fixture
def pipes(tmp_path: Path) -> Path:
    """A folder of named pipes with the names that readers look for, and a good corpus."""
    folder = tmp_path / "pipes"
    (folder / "corpus").mkdir(parents=True)
    for name in ("pipe.mid", "pipe.safetensors", "pipe.toml", "pipe.sf2", "corpus/corpus.json"):
        os.mkfifo(folder / name)
    write_midi(tmp_path / "in" / "a.mid", random_melody(1))
    write_midi(tmp_path / "in" / "b.mid", random_melody(2))
    assert main(["prepare", str(tmp_path / "in"), "--out", str(folder / "good"), "-q"]) == 0
    return folder


def test_every_reader_refuses_a_named_pipe_in_one_line(pipes: Path, tmp_path: Path) -> None:
    p, out = str(pipes), str(tmp_path / "out")
    good, pipe = f"{p}/good", f"{p}/pipe"
    cases = {
        "train --init": ["train", good, "--out", f"{out}/r1", "--init", f"{pipe}.safetensors"],
        "train corpus": ["train", f"{p}/corpus", "--out", f"{out}/r2"],
        "train --config": ["train", good, "--out", f"{out}/r3", "--config", f"{pipe}.toml"],
        "generate checkpoint": ["generate", f"{pipe}.safetensors", "--out", f"{out}/a.mid"],
        "generate --primer": ["generate", "--primer", f"{pipe}.mid", "--out", f"{out}/b.mid"],
        "generate --primer-corpus": ["generate", "--primer-corpus", f"{p}/corpus",
                                     "--out", f"{out}/c.mid"],
        "render": ["render", f"{pipe}.mid", "--png", f"{out}/a.png"],
        "render --soundfont": ["render", str(tmp_path / "in" / "a.mid"), "--wav", f"{out}/a.wav",
                               "--soundfont", f"{pipe}.sf2", "--engine", "fluidsynth"],
        "corpus info": ["corpus", "info", f"{p}/corpus"],
        "evaluate": ["evaluate", f"{pipe}.safetensors", good],
        "prepare": ["prepare", f"{pipe}.mid", "--out", f"{out}/c", "-q"],
    }  # fmt: skip
    probe = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(cases)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert probe.returncode == 0, probe.stderr[-3000:]
    results = json.loads(probe.stdout)
    wrong = {
        name: (code, err)
        for name, (code, err) in results.items()
        if code != 1 or err.count("\n") != 1 or "not a regular file (a named pipe)" not in err
    }
    assert not wrong, wrong


def test_prepare_lists_a_named_pipe_given_by_name(pipes: Path, tmp_path: Path, capsys) -> None:
    good = tmp_path / "in" / "a.mid"
    code = main(["prepare", str(good), str(pipes / "pipe.mid"), "--out", str(tmp_path / "c")])
    out = capsys.readouterr().out
    assert code == 0
    assert "pipe.mid: not a regular file (a named pipe)" in out


@pytest.mark.parametrize(("path", "kind"), [("/dev/null", "a character device"), (".", "a folder")])
def test_the_helper_names_what_the_path_is(path: str, kind: str) -> None:
    assert not_regular(path) == f"not a regular file ({kind})"
    with pytest.raises(LstmMusicError, match=rf"^primer {path}: not a regular file \({kind}\)$"):
        require_regular_file(path, f"primer {path}")
    assert not_regular(__file__) == ""


def test_run_folder_files_that_are_pipes_are_refused_or_skipped(tmp_path: Path) -> None:
    """A run folder's config.json, metrics.csv and state as named pipes: `train --resume` says
    so in one line, and the readers of optional records (the web catalog, the loss plot, the
    resume checks) skip them rather than block."""
    run = tmp_path / "run"
    run.mkdir()
    for name in ("config.json", "metrics.csv", "train_state.safetensors"):
        os.mkfifo(run / name)
    script = f"""
import json, signal, sys
from pathlib import Path
signal.alarm(60)
from lstm_music.cli import main
from lstm_music.render.plots import plot_losses
from lstm_music.training.runfiles import _looks_like_safetensors, truncate_metrics
from lstm_music.model.runs import run_corpus
from lstm_music.web.catalog import run_metrics
run = Path({str(run)!r})
try:
    plot_losses(run / "metrics.csv", run / "loss.png")
    plotted = "drawn"
except ValueError as error:
    plotted = str(error)
print(json.dumps([run_metrics(run / "metrics.csv"), str(run_corpus(run)),
                  _looks_like_safetensors(run / "train_state.safetensors"),
                  truncate_metrics(run / "metrics.csv", 3, ("step",)), plotted]))
sys.stdout.flush()
sys.exit(main(["train", "--resume", str(run)]))
"""
    probe = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert probe.returncode == 1, probe.stderr[-2000:]
    metrics, corpus, looks, dropped, plotted = json.loads(probe.stdout.splitlines()[0])
    assert (metrics, corpus, looks, dropped) == ({}, "None", False, 0)
    assert "not a regular file" in plotted
    assert probe.stderr.count("\n") == 1 and "not a regular file (a named pipe)" in probe.stderr
