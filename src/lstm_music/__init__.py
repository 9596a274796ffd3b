"""lstm-music: learn the style of a folder of MIDI files with an LSTM and write new music.

The public API is imported lazily (PEP 562), so `import lstm_music` costs almost nothing and
runs no work; `from lstm_music import Corpus, prepare` loads only what those need.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "Corpus": "lstm_music.corpus.store",
    "PrepareConfig": "lstm_music.corpus.prepare",
    "prepare": "lstm_music.corpus.prepare",
    "get_tokenizer": "lstm_music.tokens",
    "tokenizer_from_config": "lstm_music.tokens",
    "LstmMusicError": "lstm_music.errors",
    "TrainConfig": "lstm_music.training.settings",
    "train": "lstm_music.training.run",
    "preset_config": "lstm_music.training.settings",
    "load_checkpoint": "lstm_music.model.checkpoint",
    "Checkpoint": "lstm_music.model.checkpoint",
    "GenerateOptions": "lstm_music.generation.sampling",
    "SamplingOptions": "lstm_music.generation.sampling",
    "write_pieces": "lstm_music.generation.pipeline",
    "generate": "lstm_music.generation.generate",
    "score_pieces": "lstm_music.evaluation.likelihood",
    "held_out_report": "lstm_music.evaluation.report",
    "base_of": "lstm_music.model.checkpoint",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'lstm_music' has no attribute {name!r}")
