"""MidiTok's tokenizers (REMI, TSD, MIDI-Like, Structured) behind our `Tokenizer` interface.

The full MidiTok `TokenizerConfig` is stored as JSON in the corpus, so the tokenizer that decodes
generated tokens later is exactly the one that encoded the training data.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any

import symusic

from lstm_music.tokenizers.base import Tokenizer, TokenizerError

PITCH_KINDS = {"Pitch", "NoteOn", "NoteOff"}  # token kinds whose value is a MIDI pitch
_CLASSES = {"remi": "REMI", "tsd": "TSD", "midilike": "MIDILike", "structured": "Structured"}


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


def _config_from_json(config: dict[str, Any]) -> Any:
    """MidiTok's `TokenizerConfig.load_from_json`, from a dict instead of a file."""
    TokenizerConfig = import_miditok().TokenizerConfig  # noqa: N806

    config = dict(config)
    for key in ("beat_res", "beat_res_rest"):
        if key in config:
            config[key] = {tuple(map(int, k.split("_"))): v for k, v in config[key].items()}
    if "time_signature_range" in config:
        config["time_signature_range"] = {
            int(k): v for k, v in config["time_signature_range"].items()
        }
    config.setdefault("additional_params", {})
    return TokenizerConfig.from_dict(config)


class MidiTokTokenizer(Tokenizer):
    """A MidiTok tokenizer for one-track pieces (we merge or split tracks before it)."""

    name = "miditok"  # replaced per instance by the MidiTok kind, e.g. "remi"
    timed = True

    def __init__(self, kind: str = "remi", config: dict[str, Any] | None = None) -> None:
        miditok = import_miditok()

        if kind not in _CLASSES:
            raise TokenizerError(f"unknown MidiTok tokenizer {kind!r}")
        self.kind = kind
        self.name = kind  # type: ignore[misc]  # the user-facing name, e.g. "remi"
        try:
            tok_config = _config_from_json(config) if config else miditok.TokenizerConfig()
            self._tokenizer = getattr(miditok, _CLASSES[kind])(tok_config)
        except (TypeError, ValueError, KeyError) as error:
            raise TokenizerError(f"bad MidiTok config for {kind}: {error}") from error
        self._special = set(self._tokenizer.special_tokens)

    def encode(self, score: symusic.Score) -> list[str]:
        if len(score.tracks) > 1:  # one stream: MidiTok would make one sequence per track
            from lstm_music.midi import merge_tracks

            score = merge_tracks(score, list(score.tracks))
        sequences = self._tokenizer.encode(score)
        if isinstance(sequences, list):  # one sequence per track
            return [token for seq in sequences for token in seq.tokens]
        return list(sequences.tokens)

    def decode(self, tokens: list[str]) -> symusic.Score:
        TokSequence = import_miditok().TokSequence  # noqa: N806

        vocab = self._tokenizer.vocab
        known = [t for t in tokens if t in vocab and t not in self._special]
        try:
            return self._tokenizer.decode([TokSequence(tokens=known)])
        except Exception as error:  # MidiTok has no error type of its own
            raise TokenizerError(f"{self.kind} could not decode these tokens: {error}") from error

    def transpose_token(self, token: str, semitones: int) -> str | None:
        kind, _, value = token.partition("_")
        if kind not in PITCH_KINDS or not value.isdigit():
            return token
        low, high = self._tokenizer.config.pitch_range
        pitch = int(value) + semitones
        return f"{kind}_{pitch}" if low <= pitch < high else None

    def base_vocabulary(self) -> list[str]:
        """MidiTok's fixed vocabulary in its id order, without its special tokens."""
        vocab = self._tokenizer.vocab
        return [t for t in sorted(vocab, key=vocab.get) if t not in self._special]

    def params(self) -> dict[str, Any]:
        return {"kind": self.kind, "config": self._tokenizer.config.to_dict(serialize=True)}
