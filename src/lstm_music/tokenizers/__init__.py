"""Tokenizers by name: `seed` (the blog's), `grid` (piano-roll steps) and MidiTok's.

Modules are imported only when a tokenizer is asked for, so `import lstm_music` stays light.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from lstm_music.tokenizers.base import Tokenizer, TokenizerError

# name -> (module, class); MidiTok's are one adapter class with the MidiTok name as a parameter
_OWN = {
    "seed": ("lstm_music.tokenizers.seed", "SeedTokenizer"),
    "grid": ("lstm_music.tokenizers.grid", "GridTokenizer"),
}
# MidiTok tokenizers that write one flat token stream (CPWord/Octuple write compound tokens)
MIDITOK_NAMES = ("remi", "tsd", "midilike", "structured")
TOKENIZER_NAMES = ("remi", "seed", "grid") + tuple(n for n in MIDITOK_NAMES if n != "remi")
DEFAULT_TOKENIZER = "remi"

__all__ = [
    "DEFAULT_TOKENIZER",
    "TOKENIZER_NAMES",
    "Tokenizer",
    "TokenizerError",
    "get_tokenizer",
    "tokenizer_class",
    "tokenizer_from_config",
]


def tokenizer_class(name: str) -> type[Tokenizer]:
    """The class behind a tokenizer name, for its class-level facts (`timed`, `has_pitch`)."""
    key = name.lower()
    if key in _OWN:
        module, cls = _OWN[key]
        return getattr(import_module(module), cls)
    if key in MIDITOK_NAMES:
        from lstm_music.tokenizers.miditok_adapter import MidiTokTokenizer

        return MidiTokTokenizer
    known = ", ".join(TOKENIZER_NAMES)
    raise TokenizerError(f"unknown tokenizer {name!r}; choose one of: {known}")


def get_tokenizer(name: str, **params: Any) -> Tokenizer:
    """A tokenizer by its user-facing name, e.g. `get_tokenizer("grid", step=0.25)`."""
    cls = tokenizer_class(name)
    if name.lower() in MIDITOK_NAMES:
        return cls(**{**params, "kind": name.lower()})
    return cls(**params)


def tokenizer_from_config(config: dict[str, Any]) -> Tokenizer:
    """Rebuild a tokenizer from `Tokenizer.to_config()` (stored in corpora and checkpoints)."""
    try:
        name, version, params = config["tokenizer"], config["version"], config.get("params", {})
    except (KeyError, TypeError) as error:
        raise TokenizerError(f"not a tokenizer config (missing {error})") from error
    tokenizer = get_tokenizer(name, **params)
    if version != tokenizer.version:
        raise TokenizerError(
            f"tokenizer {name!r} config is version {version}, this lstm-music has version "
            f"{tokenizer.version}: re-run `lstm-music prepare`"
        )
    return tokenizer
