"""The interface every tokenizer implements.

A tokenizer turns one piece (a `symusic.Score` in ticks, already reduced to the tracks the user
chose) into one flat sequence of string tokens, and back. Strings, not ids: the corpus numbers
them with its own vocabulary, so that tokenizers never need to agree on an id space.

Configs are plain JSON dicts tagged with the class name and a format version (the miditok way),
so a corpus or checkpoint can rebuild the exact tokenizer that made its tokens.
"""

from __future__ import annotations

import sys
from abc import ABC, abstractmethod
from types import ModuleType
from typing import Any, ClassVar

import symusic

from lstm_music.errors import LstmMusicError, SettingError


class TokenizerError(LstmMusicError, ValueError):
    """Raised when a piece or a config cannot be handled; the message is shown to the user."""


class TokenizerSettingError(TokenizerError, SettingError):
    """A tokenizer setting given by the user is wrong (`setting` names it, e.g. `grid_step`)."""


class Tokenizer(ABC):
    """One piece <-> one sequence of string tokens."""

    #: the name users type after `--tokenizer`
    name: ClassVar[str]
    #: bumped whenever the token rules change, so old corpora are re-tokenized
    version: ClassVar[int] = 1
    #: True when the tokens carry timing (so `--seconds`/`--bars` make sense at generation)
    timed: ClassVar[bool] = False
    #: True when tokens carry absolute pitches (so transposition augmentation applies)
    has_pitch: ClassVar[bool] = True

    @abstractmethod
    def encode(self, score: symusic.Score) -> list[str]:
        """Tokens of one piece. `score` is in ticks; all its tracks form the piece."""

    @abstractmethod
    def decode(self, tokens: list[str]) -> symusic.Score:
        """A score (ticks) from tokens. Unknown or misplaced tokens are skipped, never fatal."""

    def transpose_token(self, token: str, semitones: int) -> str | None:
        """The token moved by `semitones`; None when it leaves the range. Timing tokens stay."""
        return token

    def base_vocabulary(self) -> list[str]:
        """Tokens that exist whatever the data (empty when the vocabulary is data-driven)."""
        return []

    def params(self) -> dict[str, Any]:
        """JSON-able parameters that, given to `__init__`, rebuild this tokenizer."""
        return {}

    def to_config(self) -> dict[str, Any]:
        """A versioned, class-tagged JSON dict (see `tokenizer_from_config`)."""
        return {
            "tokenizer": self.name,
            "class": type(self).__name__,
            "version": self.version,
            "params": self.params(),
        }


def import_miditok() -> ModuleType:
    """`import miditok` without its optional PyTorch helpers when torch is not loaded yet.

    miditok imports torch (1.5 s) only for its datasets and collators, which we never use;
    a None entry in sys.modules makes that optional import fail fast, as miditok allows.
    """
    if "miditok" in sys.modules or "torch" in sys.modules:
        import miditok

        return miditok
    sys.modules["torch"] = None  # type: ignore[assignment]
    try:
        import miditok
    finally:
        del sys.modules["torch"]
    return miditok
