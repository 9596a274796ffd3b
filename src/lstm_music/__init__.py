"""lstm-music: learn the style of a folder of MIDI files with an LSTM and write new music.

The public API is imported lazily (PEP 562), so `import lstm_music` costs almost nothing and
runs no work; `from lstm_music import Corpus, prepare` loads only what those need.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "Corpus": "lstm_music.corpus",
    "PrepareConfig": "lstm_music.prepare",
    "prepare": "lstm_music.prepare",
    "get_tokenizer": "lstm_music.tokenizers",
    "tokenizer_from_config": "lstm_music.tokenizers",
    "LstmMusicError": "lstm_music.errors",
    "TrainConfig": "lstm_music.trainconfig",
    "load_checkpoint": "lstm_music.checkpoint",
    "Checkpoint": "lstm_music.checkpoint",
    "GenerateOptions": "lstm_music.sample",
    "generate": "lstm_music.sample",
    "score_pieces": "lstm_music.evaluate",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'lstm_music' has no attribute {name!r}")
