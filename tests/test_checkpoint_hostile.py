"""Crafted checkpoints, built here from bytes: one-line errors, and no big allocation first.

A safetensors file is an 8-byte little-endian header length, a JSON header (each tensor's dtype,
shape and byte range in the data section, plus string metadata) and the raw data. Every file
below lies about something; the loader must say what in one line (`CheckpointError`), before it
builds a model or reads a tensor, so a 1 KB file cannot make it allocate gigabytes.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lstm_music.model.checkpoint import load_checkpoint
from lstm_music.model.header import CheckpointError, read_checkpoint_header
from lstm_music.model.lstm import LSTMModel, ModelConfig, expected_shapes

SIZES = {"F32": 4, "F16": 2, "BF16": 2, "I64": 8, "U8": 1}
CONFIG = {"vocab_size": 6, "embedding_dim": 3, "hidden_sizes": [4, 2], "dropout": 0.1}
VOCABULARY = ["PAD_None", "BOS_None", "EOS_None", "Bar_None", "Pitch_60", "Position_0"]


def shapes_for(config: dict[str, Any]) -> dict[str, list[int]]:
    return {name: list(shape) for name, shape in expected_shapes(ModelConfig(**config)).items()}


def good_meta(**changes: Any) -> dict[str, Any]:
    meta = {
        "format": "lstm-music-checkpoint",
        "version": 1,
        "model_config": dict(CONFIG),
        "tokenizer": {"tokenizer": "remi", "class": "MidiTokTokenizer", "version": 1},
        "vocabulary": list(VOCABULARY),
        "train_config": {},
        "corpus_config": {},
        "metrics": {"step": 3, "best_valid_loss": 1.5},
    }
    meta.update(changes)
    return {key: value for key, value in meta.items() if value is not DROP}


DROP = object()


def tokenizer(name: str, params: Any) -> dict[str, Any]:
    return {"tokenizer": name, "class": "x", "version": 1, "params": params}


def remi(config: Any) -> dict[str, Any]:
    return tokenizer("remi", {"kind": "remi", "config": config})


def crafted(
    meta: Any = None,
    shapes: dict[str, list[int]] | None = None,
    *,
    dtype: str = "F32",
    raw_meta: str | None = None,
    entries: dict[str, Any] | None = None,
    data: bytes | None = None,
) -> bytes:
    """A safetensors file from parts: tensors laid out one after another, zero-filled."""
    header: dict[str, Any] = {}
    offset = 0
    for name, shape in (shapes_for(CONFIG) if shapes is None else shapes).items():
        size = math.prod(shape) * SIZES[dtype]
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    header.update(entries or {})
    text = raw_meta if raw_meta is not None else json.dumps(good_meta() if meta is None else meta)
    header["__metadata__"] = {"lstm_music": text}
    encoded = json.dumps(header).encode()
    return len(encoded).to_bytes(8, "little") + encoded + (bytes(offset) if data is None else data)


def one(dtype: str, shape: list[int], offsets: list[int]) -> bytes:
    """The small model's file plus one more tensor "x" described as given."""
    return crafted(entries={"x": {"dtype": dtype, "shape": shape, "data_offsets": offsets}})


def frame(header: bytes, data: bytes = b"") -> bytes:
    return len(header).to_bytes(8, "little") + header + data


def test_a_well_formed_crafted_file_loads(tmp_path: Path) -> None:
    (tmp_path / "ok.safetensors").write_bytes(crafted())
    checkpoint = load_checkpoint(tmp_path / "ok.safetensors")
    assert checkpoint.vocabulary == VOCABULARY and checkpoint.model_config.hidden_sizes == [4, 2]
    assert read_checkpoint_header(tmp_path / "ok.safetensors").parameters == sum(
        p.numel() for p in checkpoint.model.parameters()
    )


def test_expected_shapes_are_the_models_own() -> None:
    config = ModelConfig(**CONFIG)
    actual = {name: tuple(t.shape) for name, t in LSTMModel(config).state_dict().items()}
    assert expected_shapes(config) == actual


NESTED = "[" * 100_000 + "]" * 100_000
SHAPES = shapes_for(CONFIG)
BAD_FILES = {
    # the safetensors frame
    "empty": (b"", "too short"),
    "header longer than the file": ((10**6).to_bytes(8, "little") + b"{}", "truncated"),
    "header length 2**63": ((2**63).to_bytes(8, "little") + b"{}", "truncated"),
    "header not JSON": (frame(b"{not json"), "header"),
    "header not an object": (frame(b"[1, 2]"), "header"),
    "header nested 100,000 deep": (frame(("{" + '"a":' + NESTED + "}").encode()), "header"),
    "metadata not strings": (frame(b'{"__metadata__": {"lstm_music": 5}}'), "metadata"),
    "unknown dtype": (one("Q7", [1], [0, 1]), "dtype"),
    "negative shape": (one("F32", [-1], [0, 4]), "shape"),
    "range past the file": (one("F32", [10**9], [0, 4 * 10**9]), "truncated"),
    "overlapping ranges": (one("F32", [1], [0, 4]), "overlap"),
    "range not the shape's size": (one("F32", [2, 2], [0, 4]), "bytes"),
    "trailing bytes": (crafted(data=bytes(10_000)), "bytes"),
    # our metadata
    "metadata nested 100,000 deep": (crafted(raw_meta=NESTED), "nested"),
    "metadata nested 100 deep": (
        crafted(good_meta(train_config={"a": json.loads("[" * 100 + "]" * 100)})),
        "nested",
    ),
    "metadata not JSON": (crafted(raw_meta="{oops"), "metadata"),
    "metadata a list": (crafted(raw_meta="[1]"), "metadata"),
    "no metadata": (frame(b'{"__metadata__": {}}'), "not an lstm-music checkpoint"),
    "foreign format": (crafted(good_meta(format="other")), "not an lstm-music checkpoint"),
    "newer version": (crafted(good_meta(version=2)), "format 2"),
    "missing vocabulary": (crafted(good_meta(vocabulary=DROP)), "vocabulary"),
    "vocabulary a number": (crafted(good_meta(vocabulary=5)), "vocabulary"),
    "vocabulary too short": (crafted(good_meta(vocabulary=VOCABULARY[:2])), "vocabulary"),
    "vocabulary of numbers": (crafted(good_meta(vocabulary=list(range(6)))), "vocabulary"),
    "tokenizer a string": (crafted(good_meta(tokenizer="remi")), "tokenizer"),
    "tokenizer without a name": (crafted(good_meta(tokenizer={"version": 1})), "tokenizer"),
    "metrics a list": (crafted(good_meta(metrics=[1])), "metrics"),
    "a metric a string": (crafted(good_meta(metrics={"best_valid_loss": "low"})), "metrics"),
    "train_config a string": (crafted(good_meta(train_config="x")), "train_config"),
    "no model_config": (crafted(good_meta(model_config=DROP)), "model_config"),
    "model_config a list": (crafted(good_meta(model_config=[1])), "model_config"),
    "model_config extra field": (crafted(good_meta(model_config={**CONFIG, "x": 1})), "x"),
    "hidden sizes a string": (
        crafted(good_meta(model_config={**CONFIG, "hidden_sizes": "44"})),
        "hidden_sizes",
    ),
    "hidden size true": (
        crafted(good_meta(model_config={**CONFIG, "hidden_sizes": [True]})),
        "hidden_sizes",
    ),
    "dropout 2": (crafted(good_meta(model_config={**CONFIG, "dropout": 2})), "dropout"),
    "vocab_size 6.5": (
        crafted(good_meta(model_config={**CONFIG, "vocab_size": 6.5})),
        "vocab_size",
    ),
    "a tensor missing": (
        crafted(shapes={k: v for k, v in SHAPES.items() if k != "head.bias"}),
        "head.bias",
    ),
    "a tensor too many": (crafted(shapes={**SHAPES, "extra": [2]}), "extra"),
    "a tensor's shape": (crafted(shapes={**SHAPES, "head.bias": [7]}), "head.bias"),
    "integer weights": (crafted(dtype="I64"), "dtype"),
    # corpus_config: generation reads a primer the way the corpus was read
    "max_silence a string": (crafted(good_meta(corpus_config={"max_silence": "x"})), "max_silence"),
    "max_silence a list": (crafted(good_meta(corpus_config={"max_silence": [1]})), "max_silence"),
    "max_silence NaN": (crafted(good_meta(corpus_config={"max_silence": math.nan})), "max_silence"),
    "max_silence negative": (crafted(good_meta(corpus_config={"max_silence": -1})), "max_silence"),
    "drums a string": (crafted(good_meta(corpus_config={"drums": "no"})), "drums"),
    "tracks unknown": (crafted(good_meta(corpus_config={"tracks": "all"})), "tracks"),
    "programs 300": (crafted(good_meta(corpus_config={"programs": [300]})), "programs"),
    "corpus_config a list": (crafted(good_meta(corpus_config=[1])), "corpus_config"),
    # tokenizer parameters: bounded before MidiTok builds anything from them
    "beat_res 0_4000": (
        crafted(good_meta(tokenizer=remi({"beat_res": {"0_4000": 480}}))),
        "beat_res",
    ),
    "beat_res 1000 per beat": (
        crafted(good_meta(tokenizer=remi({"beat_res": {"0_4": 1000}}))),
        "beat_res",
    ),
    "num_velocities 10**6": (
        crafted(good_meta(tokenizer=remi({"num_velocities": 10**6}))),
        "num_velocities",
    ),
    "pitch_range 0-1000": (
        crafted(good_meta(tokenizer=remi({"pitch_range": [0, 1000]}))),
        "pitch_range",
    ),
    "many beat ranges": (
        crafted(good_meta(tokenizer=remi({"beat_res": {f"{i}_64": 96 for i in range(16)}}))),
        "tokens",
    ),
    "miditok config a list": (crafted(good_meta(tokenizer=remi([1]))), "config"),
    "unknown tokenizer parameter": (
        crafted(good_meta(tokenizer={**remi(None), "params": {"steps": 4}})),
        "parameters",
    ),
    "grid step 0": (crafted(good_meta(tokenizer=tokenizer("grid", {"step": 0}))), "grid step"),
    "grid step NaN": (crafted(good_meta(tokenizer=tokenizer("grid", {"step": math.nan}))), "step"),
    "grid step a list": (crafted(good_meta(tokenizer=tokenizer("grid", {"step": [1]}))), "step"),
}


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_crafted_checkpoints_give_one_line(tmp_path: Path, name: str) -> None:
    data, needed = BAD_FILES[name]
    path = tmp_path / "crafted.safetensors"
    path.write_bytes(data)
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(path)
    message = str(caught.value)
    assert "\n" not in message and len(message) < 400, message
    assert needed in message, message
    with pytest.raises(CheckpointError):
        read_checkpoint_header(path)


HUGE_CONFIGS = {
    "hidden 9000": {**CONFIG, "hidden_sizes": [9000]},  # was 1.5 GB before it was refused
    "40 GB": {"vocab_size": 1_000_000, "embedding_dim": 10_000, "hidden_sizes": [8]},
    "vocab_size 10**12": {**CONFIG, "vocab_size": 10**12},
    "hidden 10**7": {**CONFIG, "hidden_sizes": [10**7]},
}
PROBE = """
import json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (6 * 2**30, 6 * 2**30))  # a guard, should the fix regress
from lstm_music.model.checkpoint import CheckpointError, load_checkpoint
results = {}
for path in sys.argv[1:]:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        load_checkpoint(path)
        message = "loaded"
    except CheckpointError as error:
        message = str(error)
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    results[path] = [message, grown * 1024]
print(json.dumps(results))
"""


def test_a_small_file_declaring_a_huge_model_is_refused_before_allocating(tmp_path: Path) -> None:
    paths = []
    for number, config in enumerate(HUGE_CONFIGS.values()):
        vocabulary = [f"t{i}" for i in range(min(config["vocab_size"], 10))]
        meta = good_meta(model_config=config, vocabulary=vocabulary)
        path = tmp_path / f"huge-{number}.safetensors"
        path.write_bytes(crafted(meta))  # the tensors of the small CONFIG: about 1 KB
        assert path.stat().st_size < 4000
        paths.append(str(path))
    probe = subprocess.run(
        [sys.executable, "-c", PROBE, *paths], capture_output=True, text=True, timeout=300
    )
    assert probe.returncode == 0, probe.stderr[-2000:]
    results = json.loads(probe.stdout)
    for name, path in zip(HUGE_CONFIGS, paths):
        message, grown = results[path]
        assert message != "loaded" and "\n" not in message, (name, message)
        assert grown < 50e6, f"{name}: the loader grew by {grown / 1e6:.0f} MB ({message})"


def test_the_web_server_skips_crafted_checkpoints_and_never_answers_500(tmp_path: Path) -> None:
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from lstm_music.web.app import create_app

    runs = tmp_path / "runs"
    (runs / "good").mkdir(parents=True)
    (runs / "good" / "best.safetensors").write_bytes(crafted())
    for number, (data, _) in enumerate(BAD_FILES.values()):
        (runs / f"bad{number}").mkdir()
        (runs / f"bad{number}" / "best.safetensors").write_bytes(data)
    with TestClient(create_app(runs, tmp_path)) as client:
        listed = client.get("/api/models")
        assert listed.status_code == 200, listed.text
        ids = {model["id"] for model in listed.json()}
        assert "good" in ids and not any(model_id.startswith("bad") for model_id in ids)
        assert client.get("/api/models/bad0").status_code == 404
        body = {"model": "good", "tokens": 16, "seed": 1}
        assert client.post("/api/generate", json=body).status_code == 200
        # the listed checkpoint replaced by a crafted one: generation says why, in one line
        huge = crafted(good_meta(model_config={**CONFIG, "hidden_sizes": [9000]}))
        for name in ("vocabulary a number", "missing vocabulary", "vocabulary too short",
                     "metadata nested 100,000 deep", "hidden 9000"):  # fmt: skip
            data = BAD_FILES[name][0] if name in BAD_FILES else huge
            (runs / "good" / "best.safetensors").write_bytes(data)
            answer = client.post("/api/generate", json=body)
            assert answer.status_code == 422, (name, answer.text)
            detail = answer.json()["detail"]
            assert "checkpoint" in detail and "\n" not in detail, detail
            assert str(tmp_path) not in detail  # no server path leaves the server
            assert client.get("/api/models/good").status_code == 422
