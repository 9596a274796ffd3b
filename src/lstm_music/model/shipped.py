"""Models shipped inside the package, so `generate` and `demo` work right after install.

Each shipped model is `lstm_music/model/weights/<name>.safetensors` (a normal checkpoint, weights in
half precision) with its model card `<name>.md` beside it. Nothing here loads weights until asked:
listing reads only the safetensors headers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from lstm_music.errors import LstmMusicError
from lstm_music.model.header import CheckpointError, read_checkpoint_header
from lstm_music.model.runs import BEST_CHECKPOINT, LAST_CHECKPOINT, run_checkpoint

DEFAULT_MODEL = "bach-chorales"
BASE_MODEL = "base"  # the general model to fine-tune from (`train --init base`)


@dataclass(frozen=True)
class ShippedModel:
    """A checkpoint that ships in the package, and its model card."""

    name: str
    path: Path
    card: Path | None

    def describe(self) -> dict[str, Any]:
        """Name, size, parameters, tokenizer and held-out figures per split, from the header
        (checked like any checkpoint's) and the card's table, without loading weights."""
        header = read_checkpoint_header(self.path)
        meta = header.meta or {}
        figures = card_figures(self.card)
        return {
            "name": self.name,
            "default": self.name == DEFAULT_MODEL,
            "path": str(self.path),
            "card": str(self.card) if self.card else None,
            "megabytes": self.path.stat().st_size / 1e6,
            "parameters": header.parameters,
            "tokenizer": meta["tokenizer"]["tokenizer"],
            "vocabulary_size": len(meta["vocabulary"]),
            "hidden_sizes": meta["model_config"]["hidden_sizes"],
            "valid_loss": figures.get("valid", meta.get("metrics", {}).get("best_valid_loss")),
            "test_loss": figures.get("test"),
            "summary": card_summary(self.card),
        }


def models_folder() -> Path:
    return Path(str(resources.files("lstm_music") / "model" / "weights"))


def shipped_models() -> list[ShippedModel]:
    """Every model in the package, the default first."""
    folder = models_folder()
    found = []
    for path in sorted(folder.glob("*.safetensors")) if folder.is_dir() else []:
        card = path.with_suffix(".md")
        found.append(ShippedModel(path.stem, path, card if card.exists() else None))
    return sorted(found, key=lambda model: model.name != DEFAULT_MODEL)


def shipped_model(name: str | None = None) -> ShippedModel:
    """The shipped model called `name` (the default one if None), or an error naming them all."""
    name = name or DEFAULT_MODEL
    models = {model.name: model for model in shipped_models()}
    if name in models:
        return models[name]
    if not models:
        raise LstmMusicError(
            "this installation ships no model (lstm_music/model/weights is empty): train one "
            "and pass its run folder"
        )
    raise LstmMusicError(f"no shipped model {name!r}; shipped: {', '.join(models)}")


def card_summary(card: Path | None) -> str:
    """The first paragraph of a model card after its title: one line for listings."""
    if card is None:
        return ""
    paragraphs = card.read_text(encoding="utf-8").split("\n\n")
    for paragraph in paragraphs:
        text = paragraph.strip()
        if text and not text.startswith("#"):
            return " ".join(text.split())
    return ""


def card_figures(card: Path | None) -> dict[str, float]:
    """NLL/token per split from the card's held-out table (`| valid | 41 | ... | 0.774 | ...`),
    so listings can name the split of every figure they show."""
    if card is None:
        return {}
    rows = [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in card.read_text(encoding="utf-8").splitlines()
        if line.lstrip().startswith("|")
    ]
    figures: dict[str, float] = {}
    column = None
    for row in rows:
        if row and row[0] == "split":
            column = next((i for i, name in enumerate(row) if name.startswith("NLL")), None)
        elif (column is not None and row[0] in ("train", "valid", "test") and column < len(row)
              and re.fullmatch(r"\d+(\.\d+)?", row[column])):  # fmt: skip
            figures.setdefault(row[0], float(row[column]))
    return figures


def resolve_checkpoint(spec: str | Path | None) -> Path:
    """A checkpoint file from what a user typed: a file, a run folder, a shipped model's name.

    None means the default shipped model; a run folder means its best checkpoint (else last).
    """
    if spec is None:
        return shipped_model().path
    candidate = Path(spec)
    if candidate.is_dir():
        checkpoint = run_checkpoint(candidate)
        if checkpoint is not None:
            return checkpoint
        if (candidate / "corpus.json").is_file():
            raise LstmMusicError(
                f"{candidate} is a corpus (written by prepare); pass the run folder written by "
                "train from it, or a shipped model's name"
            )
        raise LstmMusicError(f"{candidate} holds no {BEST_CHECKPOINT} or {LAST_CHECKPOINT}")
    if candidate.exists():
        return candidate
    if candidate.suffix == ".safetensors" or len(candidate.parts) > 1:  # a path, not a name
        raise CheckpointError(f"no checkpoint at {candidate}", "no checkpoint there")
    shipped = {model.name: model.path for model in shipped_models()}
    if str(spec) in shipped:
        return shipped[str(spec)]
    also = "and no shipped model of that name (`lstm-music models` lists them)"
    raise CheckpointError(f"no checkpoint at {candidate}, {also}", f"no checkpoint there, {also}")
