"""The benchmark scripts run end to end on tiny slices (their figures are not checked here)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import JSB_MAT, random_melody, write_midi

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def test_polyphonic_benchmark_on_three_chorales(tmp_path: Path) -> None:
    if not JSB_MAT.exists():
        pytest.skip(f"no JSB Chorales at {JSB_MAT} (a user's clone lacks ../shared)")
    pytest.importorskip("scipy")
    command = [
        sys.executable,
        str(BENCHMARKS / "polyphonic.py"),
        str(JSB_MAT),
        "--quick",
        "--minutes",
        "0.05",
        "--work",
        str(tmp_path),
        "--hidden",
        "32",
        "--embedding",
        "16",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("test_nll_per_step=") and float(last.split("=")[1]) > 0
    assert "RNN-NADE" in result.stdout  # JSB's published figures, for JSB only
    assert "goal" not in result.stdout and "plan: LSTM" in result.stdout


def run_script(name: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """benchmarks/NAME ARGS with this interpreter (the checkout's src/ is the script's own)."""
    command = [sys.executable, str(BENCHMARKS / name), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("name", ["server.py", "train_budget.py"])
def test_issue19_benchmarks_explain_themselves(name: str) -> None:
    result = run_script(name, "--help")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "--baseline-src" in result.stdout and "3a0bfbf" in result.stdout


def test_server_benchmark_on_three_stalled_clients() -> None:
    """Today's server only, one measure, 3 stalled bodies and 1 s of waiting (a few seconds)."""
    result = run_script("server.py", "--only", "stall", "--stalled", "3", "--stall-wait", "1")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "### stall" in result.stdout and "| status with them | 200 in" in result.stdout
    assert "### primer" not in result.stdout


def test_train_budget_links_the_first_files_sorted(tmp_path: Path) -> None:
    """Its file choice: recursive, sorted, MIDI suffixes in any case, at most N."""
    spec = importlib.util.spec_from_file_location("train_budget", BENCHMARKS / "train_budget.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name in ("b/2.mid", "a/9.MID", "c.txt", "1.midi"):
        write_midi(tmp_path / "in" / name, random_melody(0, length=8))
    assert module.link_files(tmp_path / "in", 2, tmp_path / "out") == 2
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["0000_1.midi", "0001_9.MID"]
    assert module.link_files(tmp_path / "in", 9, tmp_path / "more") == 3
