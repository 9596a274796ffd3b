"""Checkpoint files as read: the safetensors framing and our JSON schema, checked from the
header alone, before a tensor is read or a model built.

safetensors stores raw tensors and a JSON header, nothing executable, so a checkpoint from a
stranger cannot run code on load (unlike pickle, which `torch.load` uses). Our JSON rides in the
header's string-to-string metadata under one key, tagged with a format name and version. Every
field is checked for type and range here, so a 1 KB file cannot make a reader allocate gigabytes:
listings (shipped models, the web catalog) and `load_checkpoint` all trust this one reader.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch

from lstm_music.errors import LstmMusicError
from lstm_music.fsutil import not_regular
from lstm_music.model.lstm import ModelConfig, expected_shapes
from lstm_music.tokens import TokenizerError, check_tokenizer_config
from lstm_music.tokens.midi import TRACK_MODES

FORMAT_NAME = "lstm-music-checkpoint"
FORMAT_VERSION = 1
META_KEY = "lstm_music"
PICKLE_MAGIC = (b"\x80", b"PK\x03\x04")  # a raw pickle, or torch.save's zip of pickles
MAX_HEADER_BYTES = 16_000_000  # ours are a few KB, mostly the vocabulary
MAX_DEPTH = 32  # JSON nesting; ours is 6 deep, and recursive code downstream must not overflow
DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16,
          "BF16": torch.bfloat16, "I64": torch.int64, "I32": torch.int32, "I16": torch.int16,
          "I8": torch.int8, "U8": torch.uint8, "BOOL": torch.bool}  # fmt: skip
WEIGHT_DTYPES = ("F32", "F16", "BF16")
MAX_VOCABULARY, MAX_WIDTH, MAX_LAYERS = 1_000_000, 65_536, 32
# corpus_config: the `prepare` settings that generation reuses (primers are read the same way);
# each a check of the value and what it must be. Unknown keys are kept: they are never read.
CORPUS_FIELDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "tracks": (lambda v: v in TRACK_MODES, f"one of {', '.join(TRACK_MODES)}"),
    "drums": (lambda v: isinstance(v, bool), "true or false"),
    "max_silence": (lambda v: _number(v) and 0 <= v < math.inf, "a number >= 0"),
    "grid_step": (lambda v: _number(v) and 0 < v < math.inf, "a number > 0"),
    "programs": (lambda v: isinstance(v, list) and all(_whole(p, 0, 127) for p in v), "0-127s"),
    "max_notes": (lambda v: _whole(v, 1, 2**53), "a whole number >= 1"),
    "max_tokens": (lambda v: _whole(v, 0, 2**53), "a whole number >= 0"),
    "tokenizer": (lambda v: isinstance(v, str), "a tokenizer name"),
}
METRIC_KEYS = ("step", "epoch", "valid_loss", "valid_accuracy", "best_valid_loss", "seconds",
               "test_loss")  # fmt: skip


class CheckpointError(LstmMusicError):
    """A checkpoint that is missing, damaged, truncated, or not ours.

    `reason` is the message without the file's path, for clients that must not see paths."""

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason or message


def _bad(path: Path, reason: str) -> CheckpointError:
    return CheckpointError(f"{path}{' ' if reason.startswith('is ') else ': '}{reason}", reason)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


@dataclass(frozen=True)
class TensorEntry:
    """One tensor as a safetensors header declares it; `start`/`end` index the data section."""

    dtype: str
    shape: tuple[int, ...]
    start: int
    end: int


@dataclass(frozen=True)
class SafetensorsHeader:
    """A safetensors header, checked: every tensor's byte range holds exactly its shape's bytes,
    inside the file, the ranges neither overlap nor leave gaps; `meta` is our JSON metadata."""

    path: Path
    tensors: dict[str, TensorEntry]
    meta: dict[str, Any] | None  # None: a safetensors file that is not ours
    data_start: int

    @property
    def parameters(self) -> int:
        return sum(math.prod(entry.shape) for entry in self.tensors.values())


def _parse_json(text: str | bytes, path: Path, what: str) -> Any:
    try:
        value = json.loads(text)
    except RecursionError as error:  # thousands of nested brackets
        raise _bad(path, f"its {what} is nested more than {MAX_DEPTH} deep: refused") from error
    except ValueError as error:
        raise _bad(path, f"its {what} is damaged: {error}") from error
    stack = [(value, 1)]
    while stack:  # iterative: a crafted file cannot overflow this check
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise _bad(path, f"its {what} is nested more than {MAX_DEPTH} deep: refused")
        children = item.values() if isinstance(item, dict) else item
        if isinstance(item, (dict, list)):
            stack.extend((child, depth + 1) for child in children)
    return value


def _naturals(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in value
    )


def _entry(path: Path, name: str, value: Any) -> TensorEntry:
    where = f"tensor {_short(name)}"
    if not isinstance(value, dict) or set(value) != {"dtype", "shape", "data_offsets"}:
        raise _bad(path, f"{where} is not described by dtype, shape and data_offsets: damaged")
    dtype, shape, offsets = value["dtype"], value["shape"], value["data_offsets"]
    if not isinstance(dtype, str) or dtype not in DTYPES:
        raise _bad(path, f"{where} has an unknown dtype {_short(dtype)}")
    if not _naturals(shape) or len(shape) > 8:
        raise _bad(path, f"{where} has an invalid shape {_short(shape)}")
    if not _naturals(offsets) or len(offsets) != 2 or offsets[0] > offsets[1]:
        raise _bad(path, f"{where} has invalid data_offsets {_short(offsets)}")
    needed = math.prod(shape) * DTYPES[dtype].itemsize
    if offsets[1] - offsets[0] != needed:
        raise _bad(path, f"{where}: shape {shape} of {dtype} needs {needed:,} bytes, its range "
                         f"holds {offsets[1] - offsets[0]:,}: damaged")  # fmt: skip
    return TensorEntry(dtype, tuple(shape), offsets[0], offsets[1])


def _check_layout(path: Path, tensors: dict[str, TensorEntry], data_size: int) -> None:
    """The ranges tile the data section exactly, as safetensors itself requires."""
    for name, entry in tensors.items():
        if entry.end > data_size:
            raise _bad(path, f"is damaged or truncated: tensor {_short(name)} ends at byte "
                             f"{entry.end:,} of a data section of {data_size:,}")  # fmt: skip
    position = 0
    for name, entry in sorted(tensors.items(), key=lambda item: (item[1].start, item[1].end)):
        if entry.start != position:
            problem = "overlaps another" if entry.start < position else "leaves a gap before it"
            raise _bad(path, f"tensor {_short(name)} {problem}: damaged")
        position = entry.end
    if position != data_size:
        raise _bad(path, f"its tensors take {position:,} bytes but the file holds {data_size:,} "
                         "after its header: damaged")  # fmt: skip


def _read_frame(path: Path, kind: str) -> tuple[bytes, int]:
    """The header's bytes and the file's size; refuses pickles and impossible lengths."""
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder; name a .safetensors file in it (best or last)")
    try:
        problem = not_regular(path)  # a named pipe would block the read forever
        if problem:
            raise CheckpointError(f"{kind} {path}: {problem}", problem)
        size = path.stat().st_size
        with path.open("rb") as file:
            head = file.read(8)
            length = int.from_bytes(head, "little")
            fits = len(head) == 8 and 8 + length <= size and length <= MAX_HEADER_BYTES
            text = file.read(length) if fits else b""
    except OSError as error:
        raise CheckpointError(f"cannot read {kind} {path}: {error.strerror or error}") from error
    if head.startswith(PICKLE_MAGIC) and not text.startswith(b"{"):
        raise CheckpointError(
            f"{path} is a pickle file: refused, because loading a pickle can run arbitrary code; "
            "lstm-music checkpoints are safetensors files"
        )
    if len(head) < 8:
        raise _bad(path, f"is too short ({size} bytes) to be a safetensors file")
    if 8 + length > size:
        raise _bad(path, f"is damaged or truncated, or not a safetensors file: its header would "
                         f"be {length:,} bytes, the file has {size:,}")  # fmt: skip
    if length > MAX_HEADER_BYTES:
        raise _bad(path, f"its header is {length:,} bytes, more than a checkpoint's "
                         f"{MAX_HEADER_BYTES:,}: refused")  # fmt: skip
    return text, size


def read_safetensors_header(path: str | Path, kind: str = "checkpoint") -> SafetensorsHeader:
    """The checked header of any safetensors file (checkpoint or training state): reads the
    header only, so nothing is allocated beyond what the file's own bytes justify."""
    path = Path(path)
    text, size = _read_frame(path, kind)
    header = _parse_json(text, path, "header")
    if not isinstance(header, dict):
        raise _bad(path, "its header is not a JSON object: not a safetensors file")
    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise _bad(path, "its header's metadata is not a map of strings: damaged")
    tensors = {str(name): _entry(path, str(name), value) for name, value in header.items()}
    _check_layout(path, tensors, size - 8 - len(text))
    meta = metadata.get(META_KEY)
    if meta is not None:
        meta = _parse_json(meta, path, f"{kind} metadata")
        if not isinstance(meta, dict):
            raise _bad(path, f"its {kind} metadata is not a JSON object: damaged")
    return SafetensorsHeader(path, tensors, meta, 8 + len(text))


def read_tensors(header: SafetensorsHeader) -> dict[str, torch.Tensor]:
    """The tensors of a checked header: each read into a buffer of its declared size."""
    tensors: dict[str, torch.Tensor] = {}
    try:
        with header.path.open("rb") as file:
            for name, entry in header.tensors.items():
                buffer = bytearray(entry.end - entry.start)
                file.seek(header.data_start + entry.start)
                if file.readinto(buffer) != len(buffer):
                    raise _bad(header.path, "is truncated: it changed while being read")
                dtype = DTYPES[entry.dtype]
                flat = torch.frombuffer(buffer, dtype=dtype) if buffer else torch.empty(0, dtype)
                tensors[name] = flat.reshape(entry.shape)
    except OSError as error:
        raise CheckpointError(f"cannot read {header.path}: {error.strerror or error}") from error
    return tensors


def read_safetensors(path: str | Path, kind: str) -> tuple[dict[str, torch.Tensor], dict]:
    """Tensors and our JSON metadata, or a `CheckpointError` that says what is wrong."""
    header = read_safetensors_header(path, kind)
    if header.meta is None:
        raise CheckpointError(f"{path} is a safetensors file but not an lstm-music {kind}")
    return read_tensors(header), header.meta


def _whole(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _model_config(path: Path, value: Any) -> ModelConfig:
    """The model config, each field checked for type and range before anything is built."""
    if not isinstance(value, dict):
        raise _bad(path, "its model_config is missing or not a JSON object")
    unknown = sorted(set(value) - {f.name for f in fields(ModelConfig)})
    if unknown:
        raise _bad(path, f"its model_config has unknown fields: {_short(unknown)}")
    for key, high in (("vocab_size", MAX_VOCABULARY), ("embedding_dim", MAX_WIDTH)):
        if not _whole(value.get(key), 2 if key == "vocab_size" else 1, high):
            raise _bad(path, f"model_config.{key} must be a whole number up to {high:,}, "
                             f"not {_short(value.get(key))}")  # fmt: skip
    sizes = value.get("hidden_sizes")
    if not (isinstance(sizes, list) and 1 <= len(sizes) <= MAX_LAYERS
            and all(_whole(size, 1, MAX_WIDTH) for size in sizes)):  # fmt: skip
        raise _bad(path, f"model_config.hidden_sizes must be a list of 1 to {MAX_LAYERS} whole "
                         f"numbers up to {MAX_WIDTH:,}, not {_short(sizes)}")  # fmt: skip
    for key in ("dropout", "weight_drop", "input_dropout", "embedding_dropout"):
        rate = value.get(key, 0.0)
        if not (_number(rate) and 0 <= rate < 1):
            raise _bad(path, f"model_config.{key} must be in [0, 1), not {_short(rate)}")
    for key in ("locked_dropout", "tie_weights"):
        if not isinstance(value.get(key, False), bool):
            raise _bad(path, f"model_config.{key} must be true or false, not "
                             f"{_short(value.get(key))}")  # fmt: skip
    try:
        return ModelConfig(**value)
    except ValueError as error:  # tied weights of unequal widths
        raise _bad(path, f"its model_config is inconsistent: {error}") from error


def _check_parts(path: Path, meta: dict[str, Any], vocab_size: int) -> None:
    """Tokenizer, vocabulary (one string per output), and the dicts generation and listings read."""
    tokenizer = meta.get("tokenizer")
    if not (isinstance(tokenizer, dict) and isinstance(tokenizer.get("tokenizer"), str)
            and isinstance(tokenizer.get("params", {}), dict)):  # fmt: skip
        raise _bad(path, "its tokenizer config is missing or not a JSON object naming a tokenizer")
    try:  # bounded before anything builds it: a crafted MidiTok config could take gigabytes
        check_tokenizer_config(tokenizer)
    except TokenizerError as error:
        raise _bad(path, f"its tokenizer config is unusable: {error}") from error
    vocabulary = meta.get("vocabulary")
    if not (isinstance(vocabulary, list) and all(isinstance(t, str) for t in vocabulary)):
        raise _bad(path, f"its vocabulary must be a list of strings, not {_short(vocabulary)}")
    if len(vocabulary) != vocab_size:
        raise _bad(path, f"its vocabulary has {len(vocabulary):,} tokens but its output layer "
                         f"{vocab_size:,}: damaged")  # fmt: skip
    for key in ("train_config", "corpus_config", "metrics"):
        if not isinstance(meta.get(key, {}), dict):
            raise _bad(path, f"its {key} is not a JSON object: damaged")
    corpus = meta.get("corpus_config", {})
    for key, (valid, needed) in CORPUS_FIELDS.items():
        if key in corpus and not valid(corpus[key]):
            raise _bad(path, f"its corpus_config.{key} must be {needed}, not {_short(corpus[key])}")
    metrics = meta.get("metrics", {})
    for key in METRIC_KEYS:
        if metrics.get(key) is not None and not _number(metrics[key]):
            raise _bad(path, f"its metrics.{key} is not a number: {_short(metrics[key])}")


def _check_tensors(path: Path, tensors: dict[str, TensorEntry], config: ModelConfig) -> None:
    expected = expected_shapes(config)
    missing = [name for name in expected if name not in tensors]
    extra = [name for name in tensors if name not in expected]
    if missing or extra:
        found = (f"missing {_short(missing)}" if missing else "") + (
            f"{'; ' if missing else ''}unexpected {_short(extra)}" if extra else "")  # fmt: skip
        raise _bad(path, f"its tensors do not match its model_config: {found}")
    for name, shape in expected.items():
        entry = tensors[name]
        if entry.shape != shape:
            raise _bad(path, f"its weights do not match its model_config: {name} has shape "
                             f"{list(entry.shape)}, the config needs {list(shape)}")  # fmt: skip
        if entry.dtype not in WEIGHT_DTYPES:
            raise _bad(path, f"tensor {name} has dtype {entry.dtype}; weights are F32, F16 or BF16")


def read_checkpoint_header(path: str | Path) -> SafetensorsHeader:
    """A checkpoint's header, its metadata's schema and its tensors checked against its model
    config: what listings show and what loading trusts, read without loading any weight."""
    header = read_safetensors_header(path, "checkpoint")
    meta, path = header.meta, header.path
    if meta is None:
        raise _bad(path, "is a safetensors file but not an lstm-music checkpoint")
    if meta.get("format") != FORMAT_NAME:
        raise _bad(path, f"is not an lstm-music checkpoint (format {_short(meta.get('format'))})")
    if meta.get("version") != FORMAT_VERSION:
        raise _bad(path, f"is checkpoint format {_short(meta.get('version'))}; this lstm-music "
                         f"reads {FORMAT_VERSION}")  # fmt: skip
    config = _model_config(path, meta.get("model_config"))
    _check_parts(path, meta, config.vocab_size)
    _check_tensors(path, header.tensors, config)
    return header
