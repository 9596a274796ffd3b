"""Fine-tuning: a run that starts from a trained model's weights instead of from nothing.

A small folder cannot teach rhythm, harmony and voicing from scratch in minutes; a model trained
on much more music already knows them and only has to learn the folder's style. That works only
when the corpus's tokens mean what the model's tokens meant, so the corpus must come from the
model's tokenizer settings and number its tokens the same way (`check_corpus_fits`).

The model's sizes come from the checkpoint; the run records what it started from (`init`, as
given, and `init_sha256`, the file's digest) in its resolved settings, so config.json and every
checkpoint of the run say what it was fine-tuned from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lstm_music.errors import LstmMusicError, SettingError
from lstm_music.fsutil import file_sha256

if TYPE_CHECKING:
    from lstm_music.corpus.store import Corpus
    from lstm_music.model.checkpoint import Checkpoint
    from lstm_music.training.settings import TrainConfig


class TokenizerMismatch(LstmMusicError):
    """The corpus's tokens are not the model's; `prepare_settings` are the `prepare` settings
    (PrepareConfig fields) that make a corpus the model can be fine-tuned on."""

    def __init__(self, message: str, prepare_settings: dict[str, Any]) -> None:
        super().__init__(message)
        self.prepare_settings = prepare_settings


def matching_prepare_settings(checkpoint: Checkpoint) -> dict[str, Any]:
    """The `prepare` settings that reproduce this checkpoint's tokenizer and track handling."""
    corpus = checkpoint.corpus_config or {}
    settings: dict[str, Any] = {"tokenizer": checkpoint.tokenizer_config.get("tokenizer")}
    for key in ("grid_step", "tracks", "programs", "drums"):
        if key in corpus and (key != "grid_step" or settings["tokenizer"] == "grid"):
            settings[key] = corpus[key]
    return settings


AUTO = "auto"  # `init` that picks the shipped model scoring the corpus best (`choose_base`)
SCORED_TOKENS = 40_000  # zero-shot tokens scored per model: the same pieces for every model


@dataclass
class BaseScore:
    """One shipped model scored zero-shot on the corpus: its NLL, or why it cannot start it."""

    name: str
    nll_per_token: float | None = None
    bits_per_note: float | None = None
    refused: str = ""  # the tokens do not fit (a one-line reason)


@dataclass
class BaseChoice:
    """What `--init auto` measured: every candidate, best first, and the split it scored."""

    chosen: str
    split: str
    pieces: int
    tokens: int
    scores: list[BaseScore] = field(default_factory=list)


def choose_base(corpus: Corpus, candidates: dict[str, Path] | None = None) -> BaseChoice:
    """Score the corpus's valid split (its training split when it has none: the models never
    saw either) zero-shot with every shipped model (or `candidates`, name -> checkpoint) whose
    tokens fit the corpus, and choose the lowest NLL per token. The same pieces, at most
    `SCORED_TOKENS` tokens, for every model; refused with a `TokenizerMismatch` when none fits."""
    from lstm_music.evaluation.likelihood import score_pieces, without_controls
    from lstm_music.model.checkpoint import check_corpus_fits, load_checkpoint
    from lstm_music.model.shipped import shipped_models

    if candidates is None:
        candidates = {model.name: model.path for model in shipped_models()}
    split = "valid" if corpus.split("valid") else "train"
    pieces = _first_tokens(corpus.split(split), SCORED_TOKENS)
    if not pieces:
        raise LstmMusicError(f"{corpus.path} has no pieces to score the models on")
    ids = without_controls(corpus.vocabulary, [piece.ids for piece in pieces])
    notes = sum(piece.info.notes for piece in pieces)
    scores, mismatch, tokens = [], None, 0
    for name, path in candidates.items():
        model = load_checkpoint(path)
        try:
            check_corpus_fits(model, corpus, same_ids=True)
        except LstmMusicError as error:
            mismatch = mismatch or matching_prepare_settings(model)
            scores.append(BaseScore(name, refused=str(error).split(": ", 1)[-1]))
            continue
        totals = score_pieces(model.model, ids)
        tokens = totals.tokens  # the same pieces for every model
        bits = totals.nll / math.log(2) / notes if notes else None
        scores.append(BaseScore(name, totals.nll_per_token, bits))
    fitting = sorted((s for s in scores if s.refused == ""), key=lambda s: s.nll_per_token)
    if not fitting:
        raise TokenizerMismatch(
            f"no shipped model can start from {corpus.path}: its tokens are none of theirs; "
            "prepare the folder again with the defaults", mismatch or {})  # fmt: skip
    ranked = fitting + [s for s in scores if s.refused]
    return BaseChoice(fitting[0].name, split, len(pieces), tokens, ranked)


def _first_tokens(pieces: list, limit: int) -> list:
    """The first pieces (in the corpus's order) up to `limit` tokens, at least one piece."""
    taken, total = [], 0
    for piece in pieces:
        if taken and total + piece.info.length > limit:
            break
        taken.append(piece)
        total += piece.info.length
    return taken


def load_initial_model(config: TrainConfig, corpus: Corpus) -> tuple[TrainConfig, Checkpoint]:
    """The checkpoint `config.init` names (`auto`: the shipped model `choose_base` picks),
    checked against `corpus`, and the config resolved with its sizes and digest. A corpus of
    other tokens is refused with a `TokenizerMismatch`."""
    from lstm_music.model.checkpoint import check_corpus_fits, load_checkpoint

    if config.init == AUTO:
        config = replace(config, init=choose_base(corpus).chosen)
    base = load_checkpoint(config.init)
    _check_sizes(config, base)
    try:
        check_corpus_fits(base, corpus, same_ids=True)
    except LstmMusicError as error:
        raise TokenizerMismatch(
            f"cannot fine-tune {config.init} on this corpus: {error}; prepare the folder again "
            "with the model's tokenizer settings",
            matching_prepare_settings(base),
        ) from error
    sizes = base.model_config
    resolved = replace(
        config,
        init=_origin_name(config.init, base),
        embedding_dim=sizes.embedding_dim,
        hidden_sizes=list(sizes.hidden_sizes),
        tie_weights=sizes.tie_weights,  # a structural choice too: the base's
        init_sha256=file_sha256(base.path) if base.path else "",
    )
    return resolved, base


def _origin_name(spec: str, base: Checkpoint) -> str:
    """What the run records as its origin: a shipped model's name as it is (it resolves the
    same everywhere), anything else as the absolute path of the file that was read, so the
    record still finds it from another folder (the web server's, a later `evaluate`'s)."""
    from lstm_music.model.shipped import models_folder

    path = Path(base.path).resolve() if base.path else None
    if path is None or path.parent == models_folder().resolve():
        return spec
    return str(path)


def _check_sizes(config: TrainConfig, base: Checkpoint) -> None:
    """Refuse sizes that differ from both the model's and the unset defaults: they were asked
    for (in a TOML file, say), and a fine-tuned model cannot have them."""
    from lstm_music.training.settings import TrainConfig

    sizes = base.model_config
    unset = TrainConfig()
    asked = (config.embedding_dim, list(config.hidden_sizes))
    if asked not in (
        (unset.embedding_dim, unset.hidden_sizes),
        (sizes.embedding_dim, sizes.hidden_sizes),
    ):
        raise SettingError(
            f"a fine-tuned model keeps its model's sizes (embedding {sizes.embedding_dim}, "
            f"hidden {sizes.hidden_sizes}), not embedding {asked[0]}, hidden {asked[1]}",
            "hidden_sizes",
        )
    if config.tie_weights and not sizes.tie_weights:
        raise SettingError(
            "a fine-tuned model keeps its model's separate head: the model to start from does "
            "not tie its head to its embedding",
            "tie_weights",
        )


__all__ = [
    "AUTO",
    "BaseChoice",
    "BaseScore",
    "TokenizerMismatch",
    "choose_base",
    "load_initial_model",
    "matching_prepare_settings",
]
