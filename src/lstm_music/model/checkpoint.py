"""Checkpoints: one safetensors file holding weights plus everything generation needs as JSON.

Reading and checking a file's header is `model.header`'s (its names are re-exported here, where
callers have always found them); this module builds the model from a checked header, writes
checkpoints, and says whether a corpus can be read by one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from lstm_music.errors import LstmMusicError
from lstm_music.fsutil import file_sha256, write_bytes_atomically
from lstm_music.model.header import (
    FORMAT_NAME,
    FORMAT_VERSION,
    META_KEY,
    CheckpointError,
    read_checkpoint_header,
    read_tensors,
)
from lstm_music.model.lstm import LSTMModel, ModelConfig, load_stored, stored_config, stored_tensors
from lstm_music.model.shipped import BASE_MODEL, resolve_checkpoint, shipped_model
from lstm_music.tokens import TokenizerError

if TYPE_CHECKING:
    from lstm_music.corpus.store import Corpus
    from lstm_music.tokens import Tokenizer

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "base_of",
    "check_corpus_fits",
    "load_checkpoint",
    "read_checkpoint_header",
    "read_tensors",
    "write_safetensors",
]


def write_safetensors(path: Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """Write atomically: a temporary file in the same folder, then rename over `path`.

    The bytes are built in memory and written by us, not by `safetensors.torch.save_file`,
    whose own temporary file (`.tmpXXXXXX`) a kill would leave behind. Ours is named
    `.{name}.XXXXXXXX`, so a run folder can recognise and remove what a kill left.
    """
    from safetensors.torch import save

    tensors = {name: t.detach().contiguous().cpu() for name, t in tensors.items()}
    data = save(tensors, metadata={META_KEY: json.dumps(meta)})
    write_bytes_atomically(path, data)


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
    # the default sampling chosen for this model ({"temperature", "top_p", "chosen_by", ...},
    # evaluation.sampling_choice); {} for none: the library's defaults
    sampling: dict[str, Any] = field(default_factory=dict)

    @property
    def model_config(self) -> ModelConfig:
        return self.model.config

    @property
    def fine_tuned_from(self) -> dict[str, str] | None:
        """{"name", "sha256"} of the model this one was fine-tuned from; None if from scratch."""
        name = self.train_config.get("init") or ""
        if not isinstance(name, str) or not name:
            return None
        return {"name": name, "sha256": str(self.train_config.get("init_sha256") or "")}

    def tokenizer(self) -> Tokenizer:
        """The tokenizer this model's tokens come from, rebuilt as a corpus rebuilds its own."""
        from lstm_music.tokens.stored import stored_tokenizer  # lazily: tokenizers pull in miditok

        try:
            return stored_tokenizer(self.tokenizer_config)
        except TokenizerError as error:  # say which file, and keep the path-free reason
            raise CheckpointError(f"{self.path or 'checkpoint'}: {error}", str(error)) from error

    def save(self, path: str | Path, half: bool = False) -> None:
        """Write to `path`; `half` stores weights as float16 (half the size, for shipping)."""
        tensors = stored_tensors(self.model)
        if half:
            tensors = {name: t.half() for name, t in tensors.items()}
        meta = {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "model_config": stored_config(self.model.config),
            "tokenizer": self.tokenizer_config,
            "vocabulary": self.vocabulary,
            "train_config": self.train_config,
            "corpus_config": self.corpus_config,
            "metrics": self.metrics,
            "sampling": self.sampling,
        }
        write_safetensors(Path(path), tensors, meta)


def load_checkpoint(spec: str | Path | None, device: str | torch.device = "cpu") -> Checkpoint:
    """A checkpoint ready for `generate`: model in eval mode on `device`, float32 weights.

    `spec` is whatever `generate` accepts: a .safetensors file, a run folder (its best
    checkpoint, else its last), a shipped model's name, or None for the default shipped model.
    Everything is checked from the header first, so the model built is the size of the weights
    the file really holds."""
    from lstm_music.generation.sampling import recorded_sampling  # its bounds, checked here

    header = read_checkpoint_header(resolve_checkpoint(spec))
    meta = header.meta or {}
    tensors = read_tensors(header)
    try:
        model = LSTMModel(ModelConfig(**meta["model_config"]))
        load_stored(model, {name: t.float() for name, t in tensors.items()})
    except (RuntimeError, ValueError) as error:  # the header's checks should leave none
        reason = f"its weights do not match its model config: {error}"
        raise CheckpointError(f"{header.path}: {reason}", reason) from error
    return Checkpoint(
        model=model.to(device).eval(),
        tokenizer_config=meta["tokenizer"],
        vocabulary=meta["vocabulary"],
        train_config=meta.get("train_config", {}),
        corpus_config=meta.get("corpus_config", {}),
        metrics=meta.get("metrics", {}),
        path=header.path,
        sampling=recorded_sampling(meta.get("sampling")),  # hostile until checked: {} if bad
    )


def base_of(checkpoint: Checkpoint) -> Checkpoint | None:
    """The model to hold this one against: the one it was fine-tuned from (found by its
    recorded name, and only if its sha256 still matches), else, for a model trained from
    scratch, the shipped base model when it reads the same tokens; None when there is none."""
    origin = checkpoint.fine_tuned_from
    try:  # a shipped model by its name only: a folder called "base" here is not the base model
        path = resolve_checkpoint(origin["name"]) if origin else shipped_model(BASE_MODEL).path
        if origin and origin["sha256"] and file_sha256(path) != origin["sha256"]:
            return None
        if checkpoint.path is not None and Path(checkpoint.path).resolve() == path.resolve():
            return None  # the base model itself
        base = load_checkpoint(path, checkpoint.model.head.weight.device)
    except (LstmMusicError, OSError):  # gone, damaged or unreadable: nothing to compare with
        return None
    same = token_settings(base.tokenizer_config) == token_settings(checkpoint.tokenizer_config)
    return base if same and base.vocabulary == checkpoint.vocabulary else None


# what a corpus measured of its music for the controls (their levels, its instruments): the
# same tokens whatever they are, so a model and a corpus may differ in them
CORPUS_STATISTICS = ("density_levels", "programs")


def token_settings(tokenizer_config: dict[str, Any]) -> dict[str, Any]:
    """A tokenizer config without the corpus's statistics: what decides the tokens."""
    params = tokenizer_config.get("params")
    controls = params.get("controls") if isinstance(params, dict) else None
    if not isinstance(controls, dict):
        return tokenizer_config
    kept = {key: value for key, value in controls.items() if key not in CORPUS_STATISTICS}
    return {**tokenizer_config, "params": {**params, "controls": kept}}


def check_corpus_fits(checkpoint: Checkpoint, corpus: Corpus, same_ids: bool = True) -> None:
    """Refuse, in one line naming what differs, a corpus this checkpoint would misread.

    The corpus's tokenizer config must be the checkpoint's: other settings make other tokens of
    the same music. With `same_ids` (scoring the corpus's token ids as they are) its vocabulary
    must also number the tokens as the checkpoint's does; primers are taken as token strings
    and looked up in the model's own vocabulary, so they need not."""
    ours, theirs = checkpoint.tokenizer_config, corpus.tokenizer_config
    if theirs.get("tokenizer") != ours.get("tokenizer"):
        raise LstmMusicError(f"{corpus.path} uses {theirs.get('tokenizer')!r} tokens, this model "
                             f"{ours.get('tokenizer')!r} tokens")  # fmt: skip
    differ = _differences(token_settings(ours), token_settings(theirs))
    if differ:
        shown = ", ".join(differ[:4]) + (f" and {len(differ) - 4} more" if len(differ) > 4 else "")
        raise LstmMusicError(f"{corpus.path} uses {theirs.get('tokenizer')!r} tokens with other "
                             f"settings than this model: {shown} differ")  # fmt: skip
    vocabulary, expected = corpus.vocabulary, checkpoint.vocabulary
    if same_ids and vocabulary != expected:
        first = next((i for i, (a, b) in enumerate(zip(vocabulary, expected)) if a != b),
                     min(len(vocabulary), len(expected)))  # fmt: skip
        raise LstmMusicError(
            f"{corpus.path} numbers its tokens differently from this model ({len(vocabulary):,} "
            f"tokens against {len(expected):,}, the first difference at id {first}): score a "
            "corpus prepared for this model"
        )


def _differences(ours: Any, theirs: Any, where: str = "") -> list[str]:
    """The dotted names of the settings in which two configs differ (`params.config.beat_res`)."""
    if not (isinstance(ours, dict) and isinstance(theirs, dict)):
        return [] if ours == theirs else [where.rstrip(".") or "config"]
    found: list[str] = []
    for key in sorted(set(ours) | set(theirs), key=str):
        if key in ours and key in theirs:
            found += _differences(ours[key], theirs[key], f"{where}{key}.")
        else:
            found.append(f"{where}{key}")
    return found
