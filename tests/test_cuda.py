"""CUDA paths: training with bfloat16 autocast, the GPU stepper, generation and evaluation.

These run only where PyTorch sees a GPU (`benchmarks/gpu_check.sh` runs them on one); elsewhere
they skip with a reason. Each compares the GPU result with the CPU's, so it can fail.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import random_melody, write_midi

from lstm_music.corpus.prepare import PrepareConfig, prepare
from lstm_music.corpus.store import Corpus
from lstm_music.evaluation.likelihood import evaluate_split
from lstm_music.generation.generate import GenerateOptions, generate
from lstm_music.generation.stepper import FastStepper
from lstm_music.model.checkpoint import load_checkpoint
from lstm_music.model.lstm import LSTMModel, ModelConfig
from lstm_music.training.run import train
from lstm_music.training.settings import TrainConfig

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture(scope="module")
def cuda_run(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("cuda")
    for i in range(6):
        write_midi(root / "midi" / f"{i}.mid", random_melody(i, length=40))
    corpus = root / "corpus"
    prepare(PrepareConfig(inputs=[str(root / "midi")], out=str(corpus), valid_fraction=0.34),
            progress=False)  # fmt: skip
    config = TrainConfig(embedding_dim=32, hidden_sizes=[64, 48], window=32, batch_size=4,
                         max_steps=30, device="cuda", transpose="-2..2")  # fmt: skip
    result = train(corpus, root / "run", config, progress=False)
    assert result.best_valid_loss is not None and np.isfinite(result.best_valid_loss)
    return corpus, root / "run" / "best.safetensors"


def test_training_on_cuda_learns_and_saves(cuda_run) -> None:
    corpus, checkpoint = cuda_run
    metrics = (checkpoint.parent / "metrics.csv").read_text().splitlines()
    losses = [float(row.split(",")[4]) for row in metrics[1:] if row.split(",")[4]]
    assert losses[-1] < losses[0]  # it learned something in 30 steps
    assert load_checkpoint(checkpoint, "cuda").model.head.weight.is_cuda


def test_gpu_stepper_equals_the_model() -> None:
    torch.manual_seed(0)
    model = LSTMModel(ModelConfig(40, 16, [32, 24], 0.0)).cuda().eval()
    ids = torch.randint(0, 40, (3, 12), device="cuda")
    full, _ = model(ids)
    stepper = FastStepper(model)
    assert not stepper.use_numpy
    state, steps = stepper.convert_state(model.init_state(3)), []
    for t in range(12):
        logits, state = stepper.step(ids[:, t], state)
        steps.append(torch.as_tensor(logits, device="cuda"))
    assert torch.allclose(torch.stack(steps, dim=1), full, atol=1e-4)


def test_generation_and_evaluation_agree_across_devices(cuda_run) -> None:
    corpus_path, checkpoint = cuda_run
    options = GenerateOptions(tokens=60, num=2, seed=5)
    on_cpu = generate(load_checkpoint(checkpoint, "cpu"), options)
    on_gpu = generate(load_checkpoint(checkpoint, "cuda"), options)
    same = sum(a.tokens == b.tokens for a, b in zip(on_cpu, on_gpu))
    assert same >= 1  # float rounding may flip a rare near-tie, not every piece
    assert [len(p.tokens) for p in on_gpu] == [60, 60]
    corpus = Corpus.load(corpus_path)
    for mixture in ("off", "-2..2"):
        cpu = evaluate_split(load_checkpoint(checkpoint, "cpu"), corpus, transpose_mixture=mixture)
        gpu = evaluate_split(load_checkpoint(checkpoint, "cuda"), corpus, transpose_mixture=mixture)
        assert gpu["nll_per_token"] == pytest.approx(cpu["nll_per_token"], rel=1e-4)
