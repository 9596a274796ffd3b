"""The verdict of `compare`: copied or not; could a listener tell it from real music (the
listening test, which the verdict rests on when it ran); statistics inside the held-out spread.

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
    listening: str | None = None  # the listening test's plain words; None: it did not run


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
    test = getattr(comparison, "listening", None)
    if test is None:
        return Verdict(pieces, copied, inside, outside, f"{copies}; {stats}")
    if not test.ran:
        heard = f"listening test not run ({test.refused})"
        return Verdict(pieces, copied, inside, outside, f"{copies}; {heard}; {stats}")
    heard = (f"{test.words}: a classifier tells generated excerpts from {test.real} ones "
             f"{test.accuracy:.0%} of the time (95% interval {test.low:.0%}-{test.high:.0%}, "
             "50% is chance)")  # fmt: skip
    text = f"{copies}; {heard}; beside it, {stats}"
    return Verdict(pieces, copied, inside, outside, text, test.words)


# The held-out report's verdict (`evaluation.report`). Its thresholds are rules of thumb, kept
# here together so that they are read and changed in one place.
FEW_HELD_OUT = 5  # fewer held-out pieces than this: the report's figures mean little
# Share of the unigram guess's bits per note a model saves. A model that has learnt only which
# tokens are common saves nothing; one that has learnt rhythm, intervals and harmony saves a lot.
# Measured: a 256-unit REMI model trained 4 minutes on a 2-core CPU on the seed's 92 piano pieces
# saves 53% on their valid split (10.6 bits per note against the unigram's 22.6); a 30-step toy
# model is worse than the unigram guess. Below 10% a model has hardly learnt more than token
# counts; from 30% it has clearly learnt the music's grammar.
WEAK_SAVING = 0.10
GOOD_SAVING = 0.30
# Overfitting: held-out loss clearly above the loss on training pieces, both scored the same way
# (eval mode, state carried). 0.25 nats per token means held-out tokens are on average e^0.25 =
# 1.28 times less likely than training ones; the 15% share keeps a model with a small loss (grid
# tokens: many near-certain Step tokens) from being judged by the absolute gap alone, and noise
# on a large loss from counting. Both must hold. Whether the held-out loss is still falling is
# not known here (best.safetensors is already the lowest one), so the advice is to generalise
# better, not to stop earlier. Measured: the 4-minute seed-midi run above, 0.70 (53%).
OVERFIT_GAP = 0.25  # nats per token
OVERFIT_SHARE = 0.15  # of the training loss


def is_overfitting(train_nll: float, held_out_nll: float) -> bool:
    """Held-out loss clearly above training loss (nats per token): see OVERFIT_GAP."""
    gap = held_out_nll - train_nll
    return gap > OVERFIT_GAP and gap > OVERFIT_SHARE * train_nll


def _percent(share: float) -> str:
    """0.38 -> "38% fewer", -0.004 -> "0.4% more": small differences keep a decimal."""
    size = f"{abs(share):.0%}" if abs(share) >= 0.01 else f"{abs(share):.1%}"
    return f"{size} {'fewer' if share >= 0 else 'more'}"


def held_out_verdict(
    saving: float | None,
    base_saving: float | None = None,
    gap: float | None = None,
    overfitting: bool = False,
    copied: int | None = None,
    sampled: int = 0,
    longest_run: int = 0,
    pieces: int = 0,
    fine_tuned: bool = False,
    listening=None,
) -> str:
    """The report's one line, from its figures.

    saving: 1 - model bits / unigram bits on the held-out pieces (None: no held-out pieces);
    base_saving: the same against the base model; gap: held-out minus training loss (nats per
    token); copied: sampled pieces flagged as copies (None: not checked) out of `sampled`;
    fine_tuned: the base model is the one this model was fine-tuned from (else the shipped one);
    listening: the listening test (`ListeningTest`) of sampled pieces against held-out ones, or
    None: when it ran, its plain words lead what follows the copy check.
    """
    figure = None
    if saving is not None:
        figure = f"{_percent(saving)} bits per note than a unigram guess"
        if base_saving is not None:
            base = "the model it was fine-tuned from" if fine_tuned else "the shipped base model"
            figure += f", {_percent(base_saving)} than {base}"
    if copied:
        scored = f"on held-out pieces {figure}" if figure else "no held-out pieces to score"
        text = (f"copying: {copied} of {sampled} sampled pieces repeat the training pieces "
                f"(longest copied run {longest_run} notes) — stop earlier, train on more pieces "
                f"or sample at a higher temperature; {scored}")  # fmt: skip
    elif figure is None:
        text = ("no verdict: the corpus has no held-out pieces to judge the model on; prepare it "
                "again with some pieces held out for validation")  # fmt: skip
    else:
        text = _judged(figure, saving, base_saving, gap, overfitting, fine_tuned)
    if listening is not None and listening.ran and not copied:
        text = (f"listening test: {listening.words} (sampled pieces told from held-out ones "
                f"{listening.accuracy:.0%} of the time, 95% interval {listening.low:.0%}-"
                f"{listening.high:.0%}, 50% is chance); bits per note: {text}")  # fmt: skip
    if copied == 0:
        text += f"; no copies in {sampled} sampled piece{'s' * (sampled != 1)}"
    if saving is not None and pieces < FEW_HELD_OUT:
        text += f" (only {pieces} held-out piece{'s' * (pieces != 1)}: a hint, not a measurement)"
    return text


def _judged(figure: str, saving: float, base_saving, gap, overfitting: bool, tuned: bool) -> str:
    """The held-out figures' part of the verdict: the grade (poor, weak, fair, good), then
    overfitting when the gap says so (a good model can overfit too), then the base model."""
    if saving < 0:
        text = f"poor: {figure} — train longer, or check the corpus"
    elif saving < WEAK_SAVING:
        text = f"weak: only {figure} — train longer or on more pieces"
    else:
        text = f"{'good' if saving >= GOOD_SAVING else 'fair'}: {figure}"
        text += "" if gap is None or overfitting else " and close to its training loss"
    if overfitting:
        text += (f"; but overfitting: its held-out loss is {gap:.2f} nats per token above its "
                 "loss on training pieces — train on more pieces, raise dropout or stop "
                 "earlier")  # fmt: skip
    if tuned and base_saving is not None and base_saving <= 0:
        text += "; fine-tuning did not help on these pieces"
    return text
