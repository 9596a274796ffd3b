"""Shared fixtures: small MIDI files made with symusic, tiny trained runs, and the optional
../shared datasets."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest
import symusic

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SEED_MIDI = SHARED / "datasets" / "seed-midi"
JSB_MAT = SHARED / "datasets" / "jsb" / "JSB_Chorales.mat"


def make_score(
    notes: list[tuple[int, int, int]],
    tpq: int = 480,
    program: int = 0,
    drum: bool = False,
    velocity: int = 80,
) -> symusic.Score:
    """A one-track score from (time, duration, pitch) triples in ticks."""
    score = symusic.Score(tpq)
    track = symusic.Track("test", program, drum)
    for time, duration, pitch in notes:
        track.notes.append(symusic.Note(time, duration, pitch, velocity))
    score.tracks.append(track)
    score.tempos.append(symusic.Tempo(0, 120.0))
    return score


def random_melody(seed: int, length: int = 48, tpq: int = 480) -> symusic.Score:
    """A random two-hand piano piece on an eighth-note grid: chords in the left hand."""
    rng = random.Random(seed)
    right = symusic.Track("right", 0, False)
    left = symusic.Track("left", 0, False)
    time = 0
    for _ in range(length):
        step = tpq // 2 * rng.choice((1, 1, 2))
        right.notes.append(symusic.Note(time, step, rng.randint(60, 84), rng.randint(50, 110)))
        if rng.random() < 0.3:
            root = rng.randint(40, 55)
            for offset in (0, 4, 7):
                left.notes.append(symusic.Note(time, step * 2, root + offset, 70))
        time += step
    score = symusic.Score(tpq)
    score.tracks.extend([right, left])
    score.tempos.append(symusic.Tempo(0, 100.0))
    return score


def write_midi(path: Path, score: symusic.Score) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    score.dump_midi(str(path))
    return path


@pytest.fixture
def midi_folder(tmp_path: Path) -> Path:
    """Ten small random two-track piano pieces in nested folders."""
    folder = tmp_path / "midi"
    for i in range(10):
        write_midi(folder / ("sub" if i % 3 == 0 else "") / f"piece{i}.mid", random_melody(i))
    return folder


def require_seed_midi() -> Path:
    if not SEED_MIDI.is_dir():
        pytest.skip(
            f"the seed's MIDI files are not at {SEED_MIDI} (a user's clone lacks ../shared)"
        )
    return SEED_MIDI


def make_tiny_runs(root: Path) -> Path:
    """A --runs folder: a tiny trained run, a copy without loss.png, a lone checkpoint and junk.

    Trained once per test session (the browser test uses the same folder)."""
    if (root / "tiny" / "best.safetensors").exists():
        return root
    from lstm_music.corpus.prepare import PrepareConfig, prepare
    from lstm_music.training.run import train
    from lstm_music.training.settings import TrainConfig

    work = root.parent / f"{root.name}-work"
    for i in range(5):
        write_midi(work / "midi" / f"{i}.mid", random_melody(i, length=30))
    prepare(PrepareConfig(inputs=[str(work / "midi")], out=str(work / "corpus")), progress=False)
    config = TrainConfig(
        embedding_dim=16, hidden_sizes=[32], window=32, batch_size=2, max_steps=3, device="cpu"
    )
    train(work / "corpus", work / "tiny", config, progress=False)
    (root / "nested" / "again").mkdir(parents=True)
    for name in ("best.safetensors", "metrics.csv"):  # no loss.png: the server draws one
        shutil.copy(work / "tiny" / name, root / "nested" / "again" / name)
    (root / "exports").mkdir()
    shutil.copy(work / "tiny" / "best.safetensors", root / "exports" / "solo.safetensors")
    (root / "junk").mkdir()
    (root / "junk" / "broken.safetensors").write_bytes(b"not a checkpoint at all")
    shutil.copytree(work / "tiny", root / "tiny")  # last: its presence means "all made"
    return root


@pytest.fixture(scope="session")
def tiny_runs(tmp_path_factory) -> Path:
    """`make_tiny_runs` in the session's folder that the web tests share."""
    return make_tiny_runs(tmp_path_factory.getbasetemp() / "web-runs")
