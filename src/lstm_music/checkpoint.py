"""Checkpoints: one safetensors file holding weights plus everything generation needs as JSON.

safetensors stores raw tensors and a JSON header, nothing executable, so a checkpoint from a
stranger cannot run code on load (unlike pickle, which `torch.load` uses). Our JSON rides in the
header's string-to-string metadata under one key, tagged with a format name and version.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from lstm_music.errors import LstmMusicError
from lstm_music.model import LSTMModel, ModelConfig

FORMAT_NAME = "lstm-music-checkpoint"
FORMAT_VERSION = 1
META_KEY = "lstm_music"
PICKLE_MAGIC = (b"\x80", b"PK\x03\x04")  # a raw pickle, or torch.save's zip of pickles


class CheckpointError(LstmMusicError):
    """A checkpoint that is missing, damaged, truncated, or not ours."""


def write_safetensors(path: Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """Write atomically: a temporary file in the same folder, then rename over `path`."""
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(descriptor)
    try:
        tensors = {name: t.detach().contiguous().cpu() for name, t in tensors.items()}
        save_file(tensors, temporary, metadata={META_KEY: json.dumps(meta)})
        os.chmod(temporary, 0o644)  # mkstemp makes it private; a checkpoint is an ordinary file
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def read_safetensors(path: str | Path, kind: str) -> tuple[dict[str, torch.Tensor], dict]:
    """Tensors and our JSON metadata, or a `CheckpointError` that says what is wrong."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder; name a .safetensors file in it (best or last)")
    try:
        with path.open("rb") as file:
            head = file.read(9)
        size = path.stat().st_size
    except OSError as error:
        raise CheckpointError(f"cannot read {kind} {path}: {error.strerror or error}") from error
    # safetensors: an 8-byte little-endian header length, then the JSON header
    header_length = int.from_bytes(head[:8], "little")
    safetensors_like = head[8:9] == b"{" and 8 + header_length <= size
    if not safetensors_like and head.startswith(PICKLE_MAGIC):
        raise CheckpointError(
            f"{path} is a pickle file: refused, because loading a pickle can run arbitrary code; "
            "lstm-music checkpoints are safetensors files"
        )
    try:
        with safe_open(str(path), framework="pt") as file:
            meta_text = (file.metadata() or {}).get(META_KEY)
            tensors = {name: file.get_tensor(name) for name in file.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(
            f"{path} is damaged or truncated, or not a safetensors file: {error}"
        ) from error
    if meta_text is None:
        raise CheckpointError(f"{path} is a safetensors file but not an lstm-music {kind}")
    try:
        return tensors, json.loads(meta_text)
    except ValueError as error:
        raise CheckpointError(f"{path}: its {kind} metadata is damaged: {error}") from error


@dataclass
class Checkpoint:
    """A trained model and what it needs to generate: tokenizer, vocabulary, settings, metrics."""

    model: LSTMModel
    tokenizer_config: dict[str, Any]
    vocabulary: list[str]
    train_config: dict[str, Any] = field(default_factory=dict)
    corpus_config: dict[str, Any] = field(default_factory=dict)  # how MIDI became pieces
    metrics: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    @property
    def model_config(self) -> ModelConfig:
        return self.model.config

    def tokenizer(self):  # -> Tokenizer (imported lazily: tokenizers pull in miditok)
        from lstm_music.tokenizers import tokenizer_from_config

        return tokenizer_from_config(self.tokenizer_config)

    def save(self, path: str | Path, half: bool = False) -> None:
        """Write to `path`; `half` stores weights as float16 (half the size, for shipping)."""
        tensors = self.model.state_dict()
        if half:
            tensors = {name: t.half() for name, t in tensors.items()}
        meta = {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "model_config": asdict(self.model.config),
            "tokenizer": self.tokenizer_config,
            "vocabulary": self.vocabulary,
            "train_config": self.train_config,
            "corpus_config": self.corpus_config,
            "metrics": self.metrics,
        }
        write_safetensors(Path(path), tensors, meta)


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> Checkpoint:
    """A checkpoint ready for `generate`: model in eval mode on `device`, float32 weights."""
    tensors, meta = read_safetensors(path, "checkpoint")
    if meta.get("format") != FORMAT_NAME:
        found = meta.get("format")
        raise CheckpointError(f"{path} is not an lstm-music checkpoint (format {found!r})")
    if meta.get("version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} is checkpoint format {meta.get('version')}; this lstm-music reads "
            f"{FORMAT_VERSION}"
        )
    try:
        model = LSTMModel(ModelConfig(**meta["model_config"]))
        model.load_state_dict({name: t.float() for name, t in tensors.items()})
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        raise CheckpointError(f"{path}: weights do not match the model config: {error}") from error
    return Checkpoint(
        model=model.to(device).eval(),
        tokenizer_config=meta["tokenizer"],
        vocabulary=meta["vocabulary"],
        train_config=meta.get("train_config", {}),
        corpus_config=meta.get("corpus_config", {}),
        metrics=meta.get("metrics", {}),
        path=Path(path),
    )
