"""The small-data regularisers (issue 20): each does what it says in training and nothing at
inference, generation from a model trained with them matches its forward pass, the averaged
weights are what validation scores and best.safetensors holds, and resume keeps it all."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import random_melody, write_midi

from lstm_music.corpus.prepare import PrepareConfig, prepare
from lstm_music.corpus.store import Corpus
from lstm_music.errors import LstmMusicError
from lstm_music.evaluation.likelihood import score_pieces, without_controls
from lstm_music.generation.stepper import FastStepper
from lstm_music.model.checkpoint import Checkpoint, CheckpointError, load_checkpoint
from lstm_music.model.header import read_checkpoint_header, read_safetensors
from lstm_music.model.lstm import LSTMModel, ModelConfig
from lstm_music.training.run import train
from lstm_music.training.settings import TrainConfig, preset_config

COMPAT = Path(__file__).parent / "fixtures" / "compat" / "checkpoint.safetensors"
REGULARISED = {"weight_drop": 0.5, "locked_dropout": True, "input_dropout": 0.2,
               "embedding_dropout": 0.1, "tie_weights": True}  # fmt: skip
TINY = {"embedding_dim": 24, "hidden_sizes": [32, 24], "window": 32, "batch_size": 4,
        "dropout": 0.1, "warmup_steps": 2, "device": "cpu", **REGULARISED}  # fmt: skip


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("midi")
    for i in range(8):
        write_midi(folder / f"{i}.mid", random_melody(i, length=40))
    out = folder.parent / "corpus"
    prepare(PrepareConfig(inputs=[str(folder)], out=str(out), valid_fraction=0.25), progress=False)
    return out


def tiny(**settings) -> TrainConfig:
    return TrainConfig(**{**TINY, **settings})


def _model(**settings) -> LSTMModel:
    torch.manual_seed(0)
    values = {"vocab_size": 40, "embedding_dim": 16, "hidden_sizes": [16], "dropout": 0.0}
    return LSTMModel(ModelConfig(**{**values, **settings}))


def _layer_input(model: LSTMModel, ids: torch.Tensor) -> torch.Tensor:
    """What the first LSTM layer reads (the embedding after its dropouts), in train mode."""
    seen: list[torch.Tensor] = []
    hook = model.layers[0].register_forward_pre_hook(lambda _, args: seen.append(args[0]))
    model.train()(ids)
    hook.remove()
    return seen[0]


def _stepper_logits(model: LSTMModel, ids: torch.Tensor) -> np.ndarray:
    stepper = FastStepper(model.eval())
    state = stepper.convert_state(model.init_state(ids.shape[0]))
    logits = []
    for column in ids.t():
        step, state = stepper.step(column.numpy(), state)
        logits.append(step)
    return np.stack(logits, axis=1)


def test_weight_drop_acts_in_training_only_and_leaves_the_weights_raw() -> None:
    model = _model(weight_drop=0.5, hidden_sizes=[16, 12])
    raw = [layer.weight_hh_l0.detach().clone() for layer in model.layers]
    ids = torch.randint(0, 40, (2, 12))
    first, second = model.train()(ids)[0], model(ids)[0]
    assert not torch.allclose(first, second)  # a new DropConnect mask each pass
    first.sum().backward()  # the gradient reaches the raw recurrent weights
    assert all(layer.weight_hh_l0.grad.abs().sum() > 0 for layer in model.layers)
    assert all(torch.equal(w, layer.weight_hh_l0) for w, layer in zip(raw, model.layers))
    with torch.no_grad():
        plain = model.eval()(ids)[0]
        assert torch.equal(plain, model(ids)[0])
    assert np.allclose(_stepper_logits(model, ids), plain.numpy(), atol=1e-5)


@pytest.mark.parametrize("locked", [True, False])
def test_locked_dropout_keeps_one_mask_across_time(locked: bool) -> None:
    model = _model(input_dropout=0.5, locked_dropout=locked)
    seen = _layer_input(model, torch.full((3, 20), 7))  # one token: the same row every step
    same_in_time = all(torch.equal(seen[:, 0], seen[:, t]) for t in range(20))
    assert same_in_time == locked
    assert (seen == 0).any() and not torch.equal(seen[0], seen[1])  # masks differ by sequence


def test_embedding_dropout_zeroes_whole_token_rows() -> None:
    model = _model(embedding_dropout=0.5)
    ids = torch.arange(40).repeat(3).view(2, 60)  # every token three times
    seen = _layer_input(model, ids).detach()
    zero = (seen == 0).all(dim=-1)  # (B, T): positions whose token was dropped
    assert zero.any() and not zero.all()
    for token in range(40):
        where = zero[ids == token]
        assert where.all() or not where.any()  # a token is dropped everywhere or nowhere
    kept = ~zero
    scaled = model.embedding.weight[ids][kept] * 2  # 1 / (1 - p)
    assert torch.allclose(seen[kept], scaled.detach())
    model.eval()
    assert torch.equal(model(ids)[0], _model(embedding_dropout=0.0).eval()(ids)[0])


def _tokens() -> tuple[dict, list[str]]:
    """A real tokenizer config and vocabulary (the old checkpoint's), for hand-made files."""
    old = load_checkpoint(COMPAT)
    return old.tokenizer_config, old.vocabulary


def test_tied_weights_are_one_tensor_stored_once(tmp_path: Path) -> None:
    tokenizer, vocabulary = _tokens()
    vocab = len(vocabulary)
    model = _model(tie_weights=True, vocab_size=vocab)
    assert model.head.weight is model.embedding.weight
    untied = _model(vocab_size=vocab)
    assert (
        sum(p.numel() for p in untied.parameters()) - sum(p.numel() for p in model.parameters())
        == vocab * 16
    )
    path = tmp_path / "tied.safetensors"
    Checkpoint(model.eval(), tokenizer, vocabulary).save(path)
    assert "head.weight" not in read_checkpoint_header(path).tensors
    ids = torch.randint(0, vocab, (2, 9))
    with torch.no_grad():
        loaded = load_checkpoint(path).model
        assert loaded.head.weight is loaded.embedding.weight
        assert torch.equal(loaded(ids)[0], model(ids)[0])
    with pytest.raises(ValueError, match="as wide as the last layer"):
        _model(tie_weights=True, hidden_sizes=[20])
    with pytest.raises(LstmMusicError, match="as wide as the last layer"):
        TrainConfig(tie_weights=True, embedding_dim=256, hidden_sizes=[512])


def test_a_model_trained_with_them_generates_what_its_forward_pass_says(corpus, tmp_path) -> None:
    result = train(corpus, tmp_path / "run", tiny(epochs=1, average=0.9), progress=False)
    assert result.steps > 0 and result.best_valid_loss is not None
    checkpoint = load_checkpoint(tmp_path / "run" / "best.safetensors")
    config = checkpoint.model_config
    assert (config.weight_drop, config.locked_dropout, config.tie_weights) == (0.5, True, True)
    assert checkpoint.model.head.weight is checkpoint.model.embedding.weight
    ids = torch.randint(0, config.vocab_size, (2, 30))
    with torch.no_grad():
        forward = checkpoint.model(ids)[0].numpy()
    assert np.allclose(_stepper_logits(checkpoint.model, ids), forward, atol=1e-5)
    saved = json.loads((tmp_path / "run" / "config.json").read_text())["train"]
    assert saved["weight_drop"] == 0.5 and saved["average"] == 0.9


def test_the_average_is_what_validation_scores_and_best_holds(corpus, tmp_path) -> None:
    train(corpus, tmp_path / "run", tiny(max_steps=6, eval_every=6, average=0.8), progress=False)
    state, _ = read_safetensors(tmp_path / "run" / "train_state.safetensors", "training state")
    best = load_checkpoint(tmp_path / "run" / "best.safetensors")
    weights = dict(best.model.named_parameters())
    for name, value in weights.items():
        assert torch.equal(value.detach(), state[f"average.{name}"]), name
    assert not torch.equal(weights["embedding.weight"].detach(), state["model.embedding.weight"])
    loaded = Corpus.load(corpus)
    valid = without_controls(loaded.vocabulary, [piece.ids for piece in loaded.split("valid")])
    with torch.no_grad():
        scored = score_pieces(best.model, sorted(valid, key=len)).nll_per_token
    assert scored == pytest.approx(best.metrics["best_valid_loss"], rel=1e-5)


def test_resume_keeps_them(corpus: Path, tmp_path: Path) -> None:
    """Stopped inside an epoch and resumed: the very weights, and average, of a straight run."""
    straight = train(corpus, tmp_path / "a", tiny(max_steps=7, average=0.9), progress=False)
    train(corpus, tmp_path / "b", tiny(max_steps=4, average=0.9), progress=False)
    again = tiny(max_steps=7, average=0.9)
    resumed = train(corpus, tmp_path / "b", again, resume=True, progress=False)
    assert straight.steps == resumed.steps == 7
    a, _ = read_safetensors(tmp_path / "a" / "train_state.safetensors", "training state")
    b, _ = read_safetensors(tmp_path / "b" / "train_state.safetensors", "training state")
    names = [n for n in a if n.startswith(("model.", "average."))]
    assert any(n.startswith("average.") for n in names) and set(names) <= set(b)
    assert all(torch.allclose(a[n], b[n], atol=1e-6) for n in names)
    assert load_checkpoint(tmp_path / "b" / "last.safetensors").model_config.weight_drop == 0.5


def test_an_old_checkpoint_loads_with_them_off(tmp_path: Path) -> None:
    checkpoint = load_checkpoint(COMPAT)
    config = checkpoint.model_config
    assert (config.weight_drop, config.input_dropout, config.embedding_dropout) == (0, 0, 0)
    assert not config.locked_dropout and not config.tie_weights
    checkpoint.save(tmp_path / "again.safetensors")  # written as before: no new fields
    meta = read_checkpoint_header(tmp_path / "again.safetensors").meta or {}
    assert set(meta["model_config"]) == {"vocab_size", "embedding_dim", "hidden_sizes", "dropout"}


@pytest.mark.parametrize(
    "change, reason",
    [({"weight_drop": 1.5}, "weight_drop must be in"),
     ({"locked_dropout": "yes"}, "locked_dropout must be true or false"),
     ({"tie_weights": True, "embedding_dim": 20}, "as wide as the last layer")],
)  # fmt: skip
def test_a_checkpoint_with_bad_regularisers_is_refused(tmp_path, change, reason) -> None:
    from lstm_music.model.checkpoint import write_safetensors

    tokenizer, vocabulary = _tokens()
    model = _model(vocab_size=len(vocabulary))
    tensors = {**model.state_dict()}
    tensors["embedding.weight"] = torch.zeros(len(vocabulary), change.get("embedding_dim", 16))
    config = {**asdict(model.config), **change}
    meta = {"format": "lstm-music-checkpoint", "version": 1, "tokenizer": tokenizer,
            "vocabulary": vocabulary, "model_config": config}  # fmt: skip
    write_safetensors(tmp_path / "bad.safetensors", tensors, meta)
    with pytest.raises(CheckpointError, match=reason):
        read_checkpoint_header(tmp_path / "bad.safetensors")


def test_the_small_preset_turns_them_on() -> None:
    config = preset_config("small")
    assert config.tie_weights and config.locked_dropout and config.average > 0
    assert config.weight_drop > 0 and config.embedding_dim == config.hidden_sizes[-1]
    assert TrainConfig().weight_drop == 0 and not TrainConfig().tie_weights  # default: off
    with pytest.raises(LstmMusicError, match="average"):
        TrainConfig(average=1.0)


def test_the_train_flags_reach_the_settings() -> None:
    from lstm_music.cli import build_parser
    from lstm_music.cli.train_cmd import _config

    words = ["train", "corpus", "--out", "run", "--preset", "small", "--no-tie-weights",
             "--embedding", "256", "--weight-drop", "0.2", "--average", "0.99"]  # fmt: skip
    config, _, _ = _config(build_parser().parse_args(words))
    assert (config.weight_drop, config.average, config.tie_weights) == (0.2, 0.99, False)
    assert config.locked_dropout and config.embedding_dropout == 0.1  # the preset's
    plain, _, _ = _config(build_parser().parse_args(["train", "corpus", "--out", "run"]))
    assert plain.weight_drop == 0 and not plain.locked_dropout and plain.average == 0


@pytest.mark.parametrize("tied", [True, False])
def test_fine_tuning_keeps_the_tying_of_its_model(tmp_path: Path, tied: bool) -> None:
    from lstm_music.training.finetune import load_initial_model

    tokenizer, vocabulary = _tokens()
    model = _model(vocab_size=len(vocabulary), tie_weights=tied)
    Checkpoint(model.eval(), tokenizer, vocabulary).save(tmp_path / "base.safetensors")
    corpus = Corpus.load(COMPAT.parent / "corpus")
    init = str(tmp_path / "base.safetensors")
    if tied:  # not asked: taken from the model, with its sizes
        resolved, _ = load_initial_model(TrainConfig(init=init), corpus)
        assert resolved.tie_weights and resolved.embedding_dim == 16
    else:  # asked of a model whose head is its own: refused
        asked = TrainConfig(init=init, tie_weights=True, embedding_dim=16, hidden_sizes=[16])
        with pytest.raises(LstmMusicError, match="separate head"):
            load_initial_model(asked, corpus)
