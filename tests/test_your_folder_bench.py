"""benchmarks/your_folder.py: its split, and one tiny run end to end (its figures not checked)."""

from __future__ import annotations

import importlib.util
import math
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from conftest import random_melody, write_midi

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "your_folder.py"
TINY = ["--hidden", "32", "--embedding", "16", "--window", "32", "--batch-size", "4"]


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    """benchmarks/your_folder.py as a module (a script, not part of the package)."""
    spec = importlib.util.spec_from_file_location("your_folder_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks itself up there
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


def folder_of(root: Path, names: list[str]) -> Path:
    for index, name in enumerate(names):
        write_midi(root / name, random_melody(index, length=24))
    return root


def test_flat_folder_split_is_seeded_and_80_10_10(tmp_path: Path, bench: ModuleType) -> None:
    folder = folder_of(tmp_path / "in", [f"deep/{i:02d}.mid" for i in range(20)] + ["x.txt"])
    splits, how = bench.split_folder(folder, 0, seed=3)
    assert {s: len(f) for s, f in splits.items()} == {"test": 2, "valid": 2, "train": 16}
    assert sorted(sum(splits.values(), [])) == bench.midi_files(folder)  # each file once
    assert bench.split_folder(folder, 0, seed=3)[0] == splits  # same seed, same split
    assert bench.split_folder(folder, 0, seed=4)[0] != splits
    assert "seed 3" in how
    first, _ = bench.split_folder(folder, 5, seed=3)  # --files 5: the first five, still split
    assert sorted(sum(first.values(), [])) == bench.midi_files(folder)[:5]
    assert all(first[s] for s in ("train", "valid", "test"))


def test_sub_folders_give_the_split_and_a_missing_one_comes_from_train(
    tmp_path: Path, bench: ModuleType
) -> None:
    names = [f"train/{i}.mid" for i in range(6)] + ["test/a.mid", "test/b.mid"]
    splits, how = bench.split_folder(folder_of(tmp_path / "in", names), 0, seed=0)
    assert [p.name for p in splits["test"]] == ["a.mid", "b.mid"]
    assert len(splits["valid"]) == 1 and len(splits["train"]) == 5
    assert "valid drawn from train/" in how
    root = bench.materialise(splits, tmp_path / "split")
    linked = sorted(p.name for p in (root / "train").iterdir())
    assert len(linked) == 5 and all((root / "train" / n).resolve().exists() for n in linked)


@pytest.mark.slow
def test_tiny_run_end_to_end(tmp_path: Path) -> None:
    folder = folder_of(tmp_path / "in", [f"{i:02d}.mid" for i in range(10)])
    command = [sys.executable, str(SCRIPT), str(folder), "--minutes", "0.03", "--pieces", "2"]
    command += ["--tokens", "64", "--arms", "scratch,finetuned", "--base", "no-such-model"]
    command += ["--work", str(tmp_path / "work"), *TINY]
    result = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.strip().splitlines()
    scratch, finetuned = (part.split("=")[1] for part in lines[-1].split())
    assert lines[-1].startswith("scratch_bits_per_note=") and float(scratch) > 0
    assert math.isnan(float(finetuned))
    assert any(line.startswith("finetuned skipped: ") for line in lines)
    assert any(line.startswith("held-out (test) bits per note") for line in lines)
    listening = next(line for line in lines if line.startswith("listening test: accuracy"))
    assert "refused" in listening or "%" in listening  # today's compare ran it (2 pieces: refused)
    assert (tmp_path / "work" / "run-scratch" / "best.safetensors").exists()
