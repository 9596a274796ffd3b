"""The benchmark scripts run end to end on tiny slices (their figures are not checked here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import JSB_MAT

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
