"""The verdict of `compare`: copied or not, statistics inside the held-out spread or not.

Apart from the copy detection in `compare`, because it only reads a finished comparison: what
weakens the yardstick, and the one line that answers "did the model copy, does it sound like
the corpus?".
"""

from __future__ import annotations

from dataclasses import dataclass

MIN_HELD_OUT = 10  # a yardstick on fewer held-out (valid) pieces than this is rough


def yardstick_warnings(held_out: int, train: int, split: str) -> list[str]:
    """What weakens the valid-vs-train yardstick, given the pieces with notes in each split."""
    if not held_out or not train:
        return ["no valid split in the corpus: yardstick skipped"]
    warnings = []
    if held_out < MIN_HELD_OUT:
        warnings.append(
            f"the yardstick rests on {held_out} held-out (valid) piece{'s' * (held_out != 1)}, "
            f"fewer than {MIN_HELD_OUT}: its spread is rough, take the verdict on statistics "
            "as a hint"
        )
    if split != "train":
        warnings.append(
            "the verdict judges statistics against the train split, as the yardstick does; "
            f"the overlap column is against the {split} split"
        )
    return warnings


@dataclass(frozen=True)
class Verdict:
    """The one-line answer: which pieces were copied; which statistics lie outside the spread."""

    pieces: int
    copied: list[str]  # generated pieces flagged as copies
    inside: list[str]  # statistics inside the held-out spread (names)
    outside: list[str]  # statistics below it
    text: str


def judge(comparison) -> Verdict:
    """A `Comparison`'s verdict: copies by the threshold; statistics by `StatComparison.inside`
    (those it could judge)."""
    pieces = len(comparison.generated)
    copied = [p.name for p, m in zip(comparison.generated, comparison.copies) if m.copied]
    if copied:
        shown = ", ".join(copied[:3]) + (f" and {len(copied) - 3} more" if len(copied) > 3 else "")
        copies = f"{len(copied)} of {pieces} piece{'s' * (pieces != 1)} copied ({shown})"
    else:
        copies = (
            f"no copies (no piece has {comparison.threshold:.0%} or more of its "
            f"{comparison.ngram}-note n-grams in the {comparison.split} split)"
        )
    judged = [s for s in comparison.statistics if s.inside is not None]
    inside = [s.statistic.name for s in judged if s.inside]
    outside = [s.statistic.name for s in judged if not s.inside]
    if not judged:
        stats = "statistics not judged (no held-out yardstick)"
    elif not outside:
        stats = f"all {len(judged)} statistics inside the held-out spread"
    else:
        titles = ", ".join(s.statistic.title for s in judged if not s.inside)
        stats = f"{len(inside)} of {len(judged)} statistics inside the held-out spread, "
        stats += f"below it: {titles}"
    return Verdict(pieces, copied, inside, outside, f"{copies}; {stats}")
