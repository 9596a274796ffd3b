"""The piano-roll benchmark: rolls with silent rows at either end keep every row; the plan."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from lstm_music.corpus.prepare import PrepareConfig, prepare
from lstm_music.tokens.grid import tokens_to_roll

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "polyphonic.py"


@pytest.fixture(scope="module")
def polyphonic() -> ModuleType:
    """benchmarks/polyphonic.py as a module (a script, not part of the package)."""
    spec = importlib.util.spec_from_file_location("polyphonic_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks itself up there
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


def silent_ended_rolls(seed: int, count: int) -> list[np.ndarray]:
    """(T, 88) 0/1 rolls, each with 1-3 silent rows before its notes and 1-5 after them."""
    rng = np.random.default_rng(seed)
    rolls = []
    for _ in range(count):
        body = (rng.random((int(rng.integers(4, 12)), 88)) < 0.05).astype(np.float64)
        body[0, 40] = body[-1, 44] = 1.0  # the notes begin and end the body
        lead, tail = (
            np.zeros((int(rng.integers(1, 4)), 88)),
            np.zeros((int(rng.integers(1, 6)), 88)),
        )
        rolls.append(np.concatenate([lead, body, tail]))
    return rolls


def write_mat(path: Path, seed: int = 0, silent_piece: bool = True) -> dict[str, list]:
    """A tiny Boulanger-Lewandowski-style .mat file (cell arrays of (T, 88) matrices)."""
    from scipy.io import savemat

    splits = {
        "traindata": silent_ended_rolls(seed, 4),
        "validdata": silent_ended_rolls(seed + 1, 3),
    }
    splits["testdata"] = silent_ended_rolls(seed + 2, 3)
    if silent_piece:
        splits["testdata"].append(np.zeros((6, 88)))  # a piece that is silence throughout
    cells = {}
    for key, rolls in splits.items():
        cells[key] = np.empty(len(rolls), dtype=object)
        cells[key][:] = rolls
    savemat(path, cells)
    return splits


@pytest.mark.parametrize("max_silence", [0.0, 8.0])  # the benchmark's setting and the default
def test_silent_rows_survive_midi_and_prepare(
    polyphonic: ModuleType, tmp_path: Path, max_silence: float
) -> None:
    pytest.importorskip("scipy")
    written = write_mat(tmp_path / "rolls.mat")
    rolls = polyphonic.load_piano_roll_mat(tmp_path / "rolls.mat")
    steps = polyphonic.to_midi(rolls, tmp_path, 1.0)
    assert steps["train"] == sum(len(roll) for roll in written["traindata"])
    config = PrepareConfig(inputs=[str(tmp_path / "midi")], out=str(tmp_path / "corpus"),
                           tokenizer="grid", grid_step=1.0, max_silence=max_silence)  # fmt: skip
    corpus = prepare(config, progress=False).corpus
    tokens = polyphonic.check_corpus(tmp_path / "corpus", steps)  # exits on a mismatch
    assert tokens["test"] == sum(len(p.ids) + 1 for p in corpus.split("test"))
    for piece in corpus.pieces:  # every roll comes back whole, silent rows included
        split, index = piece.source.split("/")[-2], int(Path(piece.source).stem)
        assert np.array_equal(tokens_to_roll(piece.tokens), rolls[split][index]), piece.source
    assert len(corpus.split("test")) == 4 and corpus.split("test")[-1].tokens == ["Step"] * 6


def test_long_silences_survive_prepare_defaults(polyphonic: ModuleType, tmp_path: Path) -> None:
    """With prepare's default cuts on (silences over 8 quarters, notes over 64), all rows stay."""
    roll = np.zeros((200, 128), bool)
    roll[20:24, 60] = roll[120:130, 64] = True  # 20 silent rows, 4 sounding, 96 silent, ... 70
    polyphonic.to_midi({"train": [roll]}, tmp_path, 1.0)
    config = PrepareConfig(inputs=[str(tmp_path / "midi")], out=str(tmp_path / "corpus"),
                           tokenizer="grid", grid_step=1.0, valid_fraction=0.0)  # fmt: skip
    piece = prepare(config, progress=False).corpus.pieces[0]
    assert np.array_equal(tokens_to_roll(piece.tokens), roll)


def test_benchmark_end_to_end_on_silent_ended_rolls(tmp_path: Path) -> None:
    """Runs the script on a dataset that is not JSB: no JSB table, no goal line."""
    pytest.importorskip("scipy")
    write_mat(tmp_path / "Rolls.mat", silent_piece=False)
    command = [sys.executable, str(SCRIPT), str(tmp_path / "Rolls.mat"), "--minutes", "0.02",
               "--work", str(tmp_path / "work"), "--recipe", "jsb", "--hidden", "16",
               "--embedding", "8", "--transpose-mixture", "off"]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    output = result.stdout
    assert output.strip().splitlines()[-1].startswith("test_nll_per_step=")
    assert "RNN-NADE" not in output and "goal" not in output
    assert "no published figures known for 'rolls'" in output


def speeds(embedding: int, hidden: tuple[int, ...]) -> tuple[float, float]:
    """Training and scoring tokens/s of the ladder's models, about as on the 2-core machine."""
    return {384: (7000.0, 25000.0), 256: (14000.0, 60000.0), 128: (40000.0, 200000.0)}[hidden[0]]


def test_plan_is_jsb_recipe_on_jsb_in_25_minutes(polyphonic: ModuleType) -> None:
    plan = polyphonic.plan_recipe(67_600, 22_500, 25, speeds)
    assert (plan.embedding, plan.hidden, plan.eval_every) == (128, (384, 384), 0)
    assert (plan.lr_patience, plan.patience) == (3, 12)
    assert plan.epochs >= polyphonic.MIN_EPOCHS
    assert plan.flags()[-4:] == ["--embedding", "128", "--hidden", "384,384"]


def test_plan_scales_down_the_model_for_more_data(polyphonic: ModuleType) -> None:
    jsb = polyphonic.plan_recipe(67_600, 22_500, 25, speeds)
    tenfold = polyphonic.plan_recipe(676_000, 225_000, 25, speeds)
    assert tenfold.hidden[0] < jsb.hidden[0] and tenfold.epochs >= polyphonic.MIN_EPOCHS


def test_short_budget_on_big_data_validates_within_epochs(polyphonic: ModuleType) -> None:
    plan = polyphonic.plan_recipe(2_000_000, 200_000, 5, speeds)
    assert plan.hidden == (128, 128) and plan.epochs < polyphonic.MIN_VALIDATIONS
    assert 0 < plan.eval_every < plan.steps
    validations = plan.steps / plan.eval_every + plan.epochs
    seconds_validating = validations * 200_000 / speeds(64, (128, 128))[1]
    assert seconds_validating <= 1.2 * polyphonic.VALID_SHARE * 5 * 60
    assert "--eval-every" in plan.schedule_flags()


def test_published_figures_only_for_jsb(polyphonic: ModuleType) -> None:
    jsb_sized = {"train": [0] * 229, "valid": [0] * 76, "test": [0] * 77}
    assert polyphonic.guess_dataset(Path("JSB_Chorales.mat"), {}) == "jsb"
    assert polyphonic.guess_dataset(Path("chorales.mat"), jsb_sized) == "jsb"
    assert polyphonic.guess_dataset(Path("Nottingham.mat"), {"train": [0]}) == "nottingham"
    assert set(polyphonic.PUBLISHED) == {"jsb"}
