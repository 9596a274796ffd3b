"""Ctrl-C and SIGTERM during training save a resumable state and say so; periodic saves
mid-epoch; the time budget covers the whole command, closing report included (issue 19)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import types
from pathlib import Path

import pytest
import torch
from conftest import random_melody, write_midi

import lstm_music.training.budget as budget_module
import lstm_music.training.closing as closing_module
import lstm_music.training.loop as trainloop_module
import lstm_music.training.trainer as train_module
from lstm_music.corpus.prepare import PrepareConfig, prepare
from lstm_music.model.checkpoint import load_checkpoint
from lstm_music.model.header import read_safetensors
from lstm_music.training.run import train
from lstm_music.training.settings import TrainConfig

TINY = {"embedding_dim": 16, "hidden_sizes": [24], "window": 8, "batch_size": 1,
        "dropout": 0.1, "warmup_steps": 2, "device": "cpu", "threads": 1}  # fmt: skip
FLAGS = ["--embedding", "16", "--hidden", "24", "--window", "8", "--batch-size", "1",
         "--dropout", "0.1", "--warmup", "2", "--device", "cpu", "--threads", "1"]  # fmt: skip
SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """Long enough that one epoch is hundreds of steps: a signal lands well before its end."""
    folder = tmp_path_factory.mktemp("interrupt")
    for i in range(8):
        write_midi(folder / "midi" / f"{i}.mid", random_melody(i, length=120))
    out = folder / "corpus"
    prepare(PrepareConfig(inputs=[str(folder / "midi")], out=str(out), valid_fraction=0.25),
            progress=False)  # fmt: skip
    return out


def tiny(**settings) -> TrainConfig:
    return TrainConfig(**{**TINY, **settings})


def _state(run: Path) -> dict:
    return read_safetensors(run / "train_state.safetensors", "training state")[1]["progress"]


class _Reader:
    """Collects a child's stderr on a thread, so the test can wait for a line of it."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.text, self.process = "", process
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        while chunk := self.process.stderr.read1(256):  # type: ignore[union-attr]
            self.text += chunk.decode(errors="replace")

    def wait_for(self, pattern: str, timeout: float = 120.0) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(pattern, self.text)
            if found:
                return found
            if self.process.poll() is not None:
                break
            time.sleep(0.02)
        raise AssertionError(f"never saw {pattern!r}; stderr: {self.text[-2000:]}")


def _interrupted_run(corpus: Path, run: Path, signum: int) -> tuple[int, str]:
    """Start `lstm-music train`, wait until its progress bar shows a step done, send `signum`;
    its exit status and stderr."""
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    command = [sys.executable, "-m", "lstm_music", "train", str(corpus), "--out", str(run),
               "--no-report", *FLAGS]  # fmt: skip
    process = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env)
    reader = _Reader(process)
    try:
        reader.wait_for(r"\| *[1-9]\d*/\d+ \[")  # the bar: "| 3/412 [" (a step is done)
        process.send_signal(signum)
        assert process.wait(timeout=120) is not None
    finally:
        if process.poll() is None:
            process.kill()
    reader.thread.join(timeout=10)
    return process.returncode, reader.text


@pytest.mark.parametrize(
    ("signum", "word", "status"), [(signal.SIGINT, "interrupted", 130), (signal.SIGTERM,
                                   "terminated", 143)], ids=["SIGINT", "SIGTERM"])  # fmt: skip
def test_a_signal_before_the_first_checkpoint_saves_a_resumable_state(
    corpus, tmp_path, signum, word, status
) -> None:
    run = tmp_path / "run"
    code, err = _interrupted_run(corpus, run, signum)
    assert code == status, err[-2000:]
    found = re.search(
        rf"lstm-music train: {word}: saved a resumable state at step (\d+) in (\S+); "
        rf"resume with: lstm-music train --resume (\S+)\n",
        err,
    )
    assert found, err[-2000:]
    step = int(found.group(1))
    assert found.group(2) == found.group(3) == str(run)
    assert "Traceback" not in err
    progress = _state(run)
    assert progress["step"] == step >= 1 and progress["epoch"] == 0  # inside the first epoch
    assert 0 < progress["batch"] == step  # the exact position, mid-epoch

    # --resume continues from that step: and lands where a run never stopped lands
    more = step + 3
    resumed = train(corpus, run, tiny(max_steps=more), resume=True, progress=False)
    straight = train(corpus, tmp_path / "straight", tiny(max_steps=more), progress=False)
    assert resumed.steps == straight.steps == more
    assert not any("starting" in note for note in resumed.notes), resumed.notes
    a = load_checkpoint(run / "last.safetensors").model.state_dict()
    b = load_checkpoint(tmp_path / "straight" / "last.safetensors").model.state_dict()
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


class _FakeTime:
    """A clock that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def perf_counter(self) -> float:
        return self.now


def _fake_clock(monkeypatch, step_seconds, score_seconds: float) -> _FakeTime:
    """Steps take `step_seconds` (or `step_seconds(n)` for the n-th step), each `score_pieces`
    call (validation and report alike) `score_seconds` per 100 tokens, on a fake clock."""
    import lstm_music.evaluation.report as report_module

    clock = _FakeTime()
    fake = types.SimpleNamespace(perf_counter=clock.perf_counter, time=clock.perf_counter)
    monkeypatch.setattr(train_module, "time", fake)
    monkeypatch.setattr(trainloop_module, "time", fake)
    step, score = train_module.Trainer.step, train_module.score_pieces

    steps = [0]

    def slow_step(self, *args):
        steps[0] += 1
        clock.now += step_seconds(steps[0]) if callable(step_seconds) else step_seconds
        return step(self, *args)

    def slow_score(model, pieces, *args, **kwargs):
        clock.now += score_seconds * sum(len(p) + 1 for p in pieces) / 100
        return score(model, pieces, *args, **kwargs)

    monkeypatch.setattr(train_module.Trainer, "step", slow_step)
    monkeypatch.setattr(train_module, "score_pieces", slow_score)
    monkeypatch.setattr(report_module, "score_pieces", slow_score)
    monkeypatch.setattr(closing_module, "score_pieces", slow_score)
    return clock


def test_a_resumable_state_every_few_minutes_mid_epoch(corpus, tmp_path, monkeypatch) -> None:
    """Not only at the end of an epoch: at least every SAVE_SECONDS of the run's clock."""
    _fake_clock(monkeypatch, step_seconds=25.0, score_seconds=0.0)
    saved: list[tuple[int, int, int]] = []
    save = train_module.save_train_state

    def recording(path, model, optimizer, ranks, progress):
        saved.append((progress["step"], progress["epoch"], progress["batch"]))
        save(path, model, optimizer, ranks, progress)

    monkeypatch.setattr(train_module, "save_train_state", recording)
    train(corpus, tmp_path / "run", tiny(max_steps=12), progress=False)
    every = int(budget_module.SAVE_SECONDS // 25) + 1  # steps between periodic saves
    assert saved[:2] == [(every, 0, every), (2 * every, 0, 2 * every)], saved
    assert saved[-1][0] == 12


def test_the_budget_covers_start_up_training_and_the_closing_report(
    corpus, tmp_path, monkeypatch
) -> None:
    """--max-minutes 1 with 0.2 s steps (of 8 tokens) and scoring at 5 ms a token: from the
    command's start (10 s of start-up before training) to the report's end, the whole run
    stays inside the minute."""
    clock = _fake_clock(monkeypatch, step_seconds=0.2, score_seconds=0.5)
    began = clock.now
    clock.now += 10.0  # start-up: imports, reading the corpus
    result = train(
        corpus, tmp_path / "run", tiny(max_minutes=1.0), progress=False, report=True,
        started_at=began,
    )  # fmt: skip
    assert result.stopped_by == "max-minutes"
    assert result.report is not None  # cut to fit, maybe, but there
    assert clock.now - began <= 60.0, (clock.now - began, result.notes)
    assert (tmp_path / "run" / "report.json").exists()


def test_the_budget_holds_when_steps_suddenly_slow_down(corpus, tmp_path, monkeypatch) -> None:
    """The machine gets busy: steps go from 0.5 s to 20 s. The smoothed step time lags behind,
    so the last step's own time must count, or the run ends a step late (seen: 23% over)."""
    clock = _fake_clock(monkeypatch, lambda n: 0.5 if n <= 20 else 20.0, score_seconds=0.0)
    began = clock.now
    result = train(
        corpus,
        tmp_path / "run",
        tiny(max_minutes=1.0, eval_every=10),
        progress=False,
        started_at=began,
    )  # fmt: skip  (validations before the slowdown measure the scoring: free here)
    assert result.stopped_by == "max-minutes"
    assert clock.now - began <= 60.0, (clock.now - began, result.notes)


def test_a_budget_too_short_for_any_report_skips_it_with_a_note(
    corpus, tmp_path, monkeypatch
) -> None:
    """Scoring 12 times slower than the training speed foretells (0.3 s a token): the closing
    validation is skipped, a probe measures the real speed, and the report is skipped."""
    clock = _fake_clock(monkeypatch, step_seconds=1.0, score_seconds=30.0)
    began = clock.now
    result = train(
        corpus, tmp_path / "run", tiny(max_minutes=0.5), progress=False, report=True,
        started_at=began,
    )  # fmt: skip
    assert result.report is None
    assert any(note.startswith("no closing report:") for note in result.notes), result.notes
    assert any("scored 0 of 2 pieces" in note for note in result.notes), result.notes
    assert clock.now - began <= 30.0, result.notes


def test_whole_command_wall_time_within_a_short_budget(corpus, tmp_path) -> None:
    """The real thing, generously: `train --max-minutes 0.1` (6 s) of a tiny model, report
    included, ends within the budget and a wide margin (Python's start before `main`, and a
    machine busy with other work: the fake-clock tests above hold the budget to the second)."""
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    command = [sys.executable, "-m", "lstm_music", "train", str(corpus), "--out",
               str(tmp_path / "run"), "--max-minutes", "0.1", "--quiet", *FLAGS]  # fmt: skip
    began = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    took = time.monotonic() - began
    assert result.returncode == 0, result.stderr
    assert "stopped by max-minutes" in result.stdout
    assert took <= 6.0 + 40.0, took


def test_stop_signals_note_while_deferring_and_stop_at_once_otherwise() -> None:
    from lstm_music.training.interrupt import Interrupted, StopSignals

    before = signal.getsignal(signal.SIGTERM)
    with StopSignals() as signals:
        with pytest.raises(Interrupted) as stop:  # start-up: at once
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)
        assert stop.value.signum == signal.SIGTERM
        signals.deferring = True
        os.kill(os.getpid(), signal.SIGINT)  # the loop: noted only
        assert signals.received == signal.SIGINT
        with pytest.raises(Interrupted):  # a second one: at once
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)
    assert signal.getsignal(signal.SIGTERM) is before  # restored


def test_sigterm_in_start_up_is_one_word_and_exit_143(tmp_path, monkeypatch, capsys) -> None:
    from lstm_music import cli
    from lstm_music.training.interrupt import Interrupted

    def stopped(args):
        raise Interrupted(signal.SIGTERM)

    args = cli.build_parser().parse_args(["train", str(tmp_path / "c"), "--out", str(tmp_path)])
    args.run = stopped
    monkeypatch.setattr(cli.CommandParser, "parse_args", lambda self, argv=None: args)
    assert cli.main(["train"]) == 143
    assert capsys.readouterr().err == "lstm-music train: terminated\n"


def test_the_reserve_for_the_report_counts_the_listening_test(corpus) -> None:
    """A report that samples (the copy check) also runs the listening test: its sampling and its
    classifier take time the budget must keep, or a short run ends late."""
    from lstm_music.corpus.store import Corpus
    from lstm_music.evaluation.listening import LISTEN_TOKENS

    loaded = Corpus.load(corpus)
    per_token = 1e-4
    with_sampling = closing_module.report_seconds(loaded, per_token, 2_000, 4)
    without = closing_module.report_seconds(loaded, per_token, 2_000, 0)
    step = max(closing_module.SAMPLE_STEP_TOKENS * per_token, closing_module.SAMPLE_STEP_SECONDS)
    assert with_sampling - without >= LISTEN_TOKENS * step + closing_module.LISTEN_FIT_SECONDS
