"""Generation: fast step equals the model, every option writes valid MIDI, bad input named."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import symusic
import torch
from conftest import make_score, random_melody, write_midi

from lstm_music.cli import main
from lstm_music.corpus.prepare import PrepareConfig, prepare
from lstm_music.generation.generate import GenerateOptions, generate
from lstm_music.generation.sampling import SamplingOptions
from lstm_music.generation.stepper import FastStepper, pick_tokens
from lstm_music.model.checkpoint import CheckpointError, load_checkpoint
from lstm_music.model.lstm import LSTMModel, ModelConfig
from lstm_music.training.run import train
from lstm_music.training.settings import TrainConfig


def make_run(root: Path, tokenizer: str) -> Path:
    midi = root / f"midi-{tokenizer}"
    for i in range(5):
        write_midi(midi / f"{i}.mid", random_melody(i, length=30))
    corpus = root / f"corpus-{tokenizer}"
    prepare(PrepareConfig(inputs=[str(midi)], out=str(corpus), tokenizer=tokenizer), progress=False)
    config = TrainConfig(
        embedding_dim=16, hidden_sizes=[32, 16], window=32, batch_size=2, max_steps=3, device="cpu"
    )
    train(corpus, root / f"run-{tokenizer}", config, progress=False)
    return root / f"run-{tokenizer}"


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("gen")
    return {name: make_run(root, name) for name in ("remi", "seed", "grid")}


@pytest.mark.parametrize("use_numpy", [True, False], ids=["numpy", "torch"])
def test_fast_step_equals_the_model(use_numpy: bool) -> None:
    torch.manual_seed(0)
    model = LSTMModel(ModelConfig(50, 12, [24, 16, 8], 0.0)).eval()
    ids = torch.randint(0, 50, (3, 15))
    full, _ = model(ids)
    stepper, steps = FastStepper(model, use_numpy), []
    state = stepper.convert_state(model.init_state(3))
    for t in range(15):
        logits, state = stepper.step(ids[:, t].numpy() if use_numpy else ids[:, t], state)
        steps.append(torch.as_tensor(logits))
    assert torch.allclose(torch.stack(steps, dim=1), full.detach(), atol=1e-5)


def test_top_k_and_top_p_only_sample_allowed_tokens() -> None:
    logits = np.tile([[4.0, 3.0, 2.0, 1.0, 0.0]], (2000, 1))
    rng = np.random.default_rng(0)
    assert set(pick_tokens(logits, SamplingOptions(top_k=2, top_p=1.0), rng).tolist()) == {0, 1}
    probs = torch.tensor(logits[0]).softmax(-1)  # 0.64, 0.24, 0.09, ...: top-p 0.8 keeps two
    assert probs[0] < 0.8 < probs[0] + probs[1]
    assert set(pick_tokens(logits, SamplingOptions(top_p=0.8), rng).tolist()) == {0, 1}
    assert set(pick_tokens(logits, SamplingOptions(greedy=True)).tolist()) == {0}
    # plain sampling follows the distribution: token 0 about 64% of the time
    share = (pick_tokens(logits, SamplingOptions(top_p=1.0), rng) == 0).mean()
    assert abs(share - float(probs[0])) < 0.04


@pytest.mark.parametrize("tokenizer", ["remi", "seed", "grid"])
def test_fixed_seed_reproduces(runs, tokenizer: str) -> None:
    checkpoint = load_checkpoint(runs[tokenizer] / "best.safetensors")
    first = generate(checkpoint, tokens=60, seed=3, num=2)
    again = generate(checkpoint, tokens=60, seed=3, num=2)
    other = generate(checkpoint, tokens=60, seed=4, num=2)
    assert [p.tokens for p in first] == [p.tokens for p in again]
    assert [p.tokens for p in first] != [p.tokens for p in other]
    assert all(len(p.tokens) == 60 and "<bos>" not in p.tokens for p in first)


OPTIONS = [
    ["--greedy"],
    ["--temperature", "0.7"],
    ["--top-k", "5"],
    ["--top-p", "0.5"],
    ["--num", "3"],
    ["--seconds", "4"],
    ["--bars", "2"],
    ["--tempo", "90", "--program", "40"],
]


@pytest.mark.parametrize("flags", OPTIONS, ids=" ".join)
def test_every_option_writes_valid_midi(runs, tmp_path: Path, flags: list[str]) -> None:
    out = tmp_path / "out.mid"
    code = main(
        ["generate", str(runs["remi"]), "--out", str(out), "--tokens", "80", "--seed", "1", *flags]
    )
    assert code == 0
    files = sorted(tmp_path.glob("out*.mid"))
    assert len(files) == (3 if "--num" in flags else 1)
    for file in files:
        score = symusic.Score(str(file))
        if "--seconds" in flags:
            assert score.to("second").end() <= 4.0 + 1e-6
        if "--program" in flags:
            assert all(track.program == 40 for track in score.tracks)


def test_primers(runs, tmp_path: Path) -> None:
    primer = write_midi(tmp_path / "primer.mid", random_melody(9, length=20))
    corpus = runs["remi"].parent / "corpus-remi"
    for flags in (["--primer", str(primer)], ["--primer-corpus", str(corpus)]):
        out = tmp_path / "p.mid"
        assert (
            main(
                [
                    "generate",
                    str(runs["remi"]),
                    "--out",
                    str(out),
                    "--tokens",
                    "40",
                    "--primer-tokens",
                    "30",
                    *flags,
                ]
            )
            == 0
        )
        assert symusic.Score(str(out)).note_num() > 0  # the primer's notes at least
    # --only-new leaves the primer out: the same seed gives the same new music, fewer notes
    common = [
        "generate",
        str(runs["remi"]),
        "--tokens",
        "40",
        "--seed",
        "2",
        "--primer",
        str(primer),
    ]
    main([*common, "--out", str(tmp_path / "all.mid")])
    main([*common, "--out", str(tmp_path / "new.mid"), "--only-new"])
    with_primer, new_only = (symusic.Score(str(tmp_path / n)) for n in ("all.mid", "new.mid"))
    assert new_only.note_num() < with_primer.note_num()


def test_seed_rendering_is_quarter_notes(runs) -> None:
    [piece] = generate(load_checkpoint(runs["seed"] / "best.safetensors"), tokens=30, seed=1)
    onsets = sorted({note.time for track in piece.score.tracks for note in track.notes})
    quarter = piece.score.tpq
    assert all(onset % quarter == 0 for onset in onsets)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--temperature", "0"], "--temperature"),
        (["--top-p", "1.5"], "--top-p"),
        (["--top-p", "0"], "--top-p"),
        (["--primer", "missing.mid"], "primer missing.mid"),
        (["--seconds", "5"], "timed tokenizer"),
    ],
)
def test_bad_generate_input(runs, tmp_path: Path, capsys, flags, message: str) -> None:
    code = main(["generate", str(runs["seed"]), "--out", str(tmp_path / "x.mid"), *flags])
    err = capsys.readouterr().err
    assert code == 1 and message in err and "Traceback" not in err


def test_primer_without_notes_and_foreign_corpus(runs, tmp_path: Path, capsys) -> None:
    empty = write_midi(tmp_path / "empty.mid", make_score([]))
    grid_corpus = runs["grid"].parent / "corpus-grid"
    for flags, message in (
        (["--primer", str(empty)], "no notes"),
        (["--primer-corpus", str(grid_corpus)], "'grid' tokens"),
    ):
        out = str(tmp_path / "x.mid")
        assert main(["generate", str(runs["remi"]), "--out", out, *flags]) == 1
        assert message in capsys.readouterr().err


def test_pickle_and_damaged_checkpoints_are_refused(runs, tmp_path: Path) -> None:
    class Boom:
        def __reduce__(self):
            return (print, ("pickle code ran",))

    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps(Boom()))
    with pytest.raises(CheckpointError, match="pickle"):
        load_checkpoint(evil)
    torch.save({"weights": torch.zeros(2)}, tmp_path / "torch.pt")
    with pytest.raises(CheckpointError, match="pickle"):
        load_checkpoint(tmp_path / "torch.pt")
    good = (runs["remi"] / "best.safetensors").read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(good[: len(good) // 2])
    with pytest.raises(CheckpointError, match="damaged or truncated"):
        load_checkpoint(tmp_path / "cut.safetensors")
    from safetensors.torch import save_file

    save_file({"x": torch.zeros(1)}, str(tmp_path / "foreign.safetensors"))
    with pytest.raises(CheckpointError, match="not an lstm-music checkpoint"):
        load_checkpoint(tmp_path / "foreign.safetensors")


def test_safetensors_header_that_starts_like_a_pickle_loads(tmp_path: Path) -> None:
    """A header 0x280 bytes long begins with the bytes 80 02, pickle protocol 2's magic."""
    import json

    from lstm_music.model.header import read_safetensors

    header = json.dumps({"__metadata__": {"lstm_music": json.dumps({"format": "x"})}})
    raw = header.encode().ljust(0x280)
    (tmp_path / "odd.safetensors").write_bytes((0x280).to_bytes(8, "little") + raw)
    assert (tmp_path / "odd.safetensors").read_bytes()[:2] == b"\x80\x02"
    assert read_safetensors(tmp_path / "odd.safetensors", "checkpoint")[1] == {"format": "x"}


def test_generate_options_validate() -> None:
    with pytest.raises(Exception, match="temperature"):
        GenerateOptions(temperature=-1)
