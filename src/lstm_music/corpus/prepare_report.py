"""What `prepare` tells its caller: the result's counts, split warnings, the no-piece error.

Kept apart from the reading and tokenizing in `prepare`: these only read the finished manifest
and corpus.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lstm_music.corpus.discover import FoundFile
from lstm_music.corpus.store import Corpus

MIN_SPLIT_PIECES = 5  # a valid/test split smaller than this gets a warning


@dataclass
class PrepareResult:
    """What `prepare` did: the corpus and per-status file counts, for the summary."""

    corpus: Corpus
    counts: dict[str, int]
    reused: int
    seconds: float
    problems: list[dict[str, Any]]
    trimmed_files: int = 0  # files whose silence was cut (trailing, leading or long gaps)
    trimmed_quarters: dict[str, float] = field(default_factory=dict)  # totals (and long_notes)
    warnings: list[str] = field(default_factory=list)  # e.g. an empty valid split


def prepare_result(out, manifest_files, reused, seconds, fractions, files) -> PrepareResult:
    """What `prepare` did, read back from the corpus it wrote; `fractions`: (valid, test)."""
    statuses = [f["status"] for f in manifest_files]
    counts = {status: statuses.count(status) for status in ("ok", "skipped", "failed")}
    problems = [f for f in manifest_files if f["status"] != "ok"]
    corpus = Corpus.load(out)
    trimmed = [f["trimmed"] for f in manifest_files if f.get("trimmed")]
    result = PrepareResult(corpus, counts, reused, seconds, problems)
    names = ("trailing_quarters", "trailing_seconds", "capped_quarters", "long_notes")
    result.trimmed_files = sum(1 for t in trimmed if any(t.get(name) for name in names))
    result.trimmed_quarters = {name: sum(t.get(name, 0) for t in trimmed) for name in names}
    result.warnings = split_warnings(corpus, *fractions, files)
    return result


def split_warnings(
    corpus: Corpus, valid_fraction: float, test_fraction: float, files: list[FoundFile]
) -> list[str]:
    """Warnings for a requested valid or test split that is empty or too small to trust."""
    warnings = []
    meaning = {
        "valid": "train cannot measure held-out loss, so best.safetensors is simply the last step",
        "test": "`evaluate` has no test pieces to report held-out figures on",
    }
    noisy = {
        "valid": "its loss is a noisy guide for choosing best.safetensors",
        "test": "test figures on it will be noisy",
    }
    fractions = {"valid": valid_fraction, "test": test_fraction}
    unfoldered = any(f.folder_split is None for f in files)
    for name in ("valid", "test"):
        asked = any(f.folder_split == name for f in files) or (fractions[name] > 0 and unfoldered)
        count = len(corpus.split(name))
        if not asked or count >= MIN_SPLIT_PIECES:
            continue
        if count == 0:
            warnings.append(f"the {name} split is empty: {meaning[name]}; add more files")
        else:
            warnings.append(
                f"the {name} split has only {count} piece(s) (under {MIN_SPLIT_PIECES}): "
                f"{noisy[name]}; add more files"
            )
    return warnings


def nothing_usable(manifest_files: list[dict], shown: int = 3) -> str:
    """The error for a run without a usable piece: a few files by name with their reasons."""
    reasons: dict[str, int] = {}
    for entry in manifest_files:
        reasons[entry["reason"]] = reasons.get(entry["reason"], 0) + 1
    top = "; ".join(f"{reason} ({n})" for reason, n in sorted(reasons.items(), key=lambda r: -r[1]))
    named = ", ".join(f"{e['source']} ({e['reason']})" for e in manifest_files[:shown])
    more = len(manifest_files) - shown
    named += f" and {more} more" if more > 0 else ""
    return f"no usable piece in {len(manifest_files)} MIDI file(s): {named}. Reasons: {top}"
