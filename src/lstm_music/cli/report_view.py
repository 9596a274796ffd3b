"""The held-out report as text: what `train` prints at its end and `evaluate` after its table."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lstm_music.cli.table import format_table

if TYPE_CHECKING:
    from lstm_music.evaluation.report import CopyCheck, HeldOutReport, LossGap


def report_lines(report: HeldOutReport) -> list[str]:
    """The report in lines for a terminal: the figures, the gap, the copy check, the listening
    test, warnings, and the verdict last."""
    lines = []
    if report.split is not None:
        lines.append(
            f"held-out report, {report.split} split: {report.pieces:,} "
            f"piece{'s' * (report.pieces != 1)}, {report.tokens:,} tokens scored, "
            f"{report.notes:,} notes"
        )
        rows = [
            (p.label, "-" if p.bits_per_note is None else p.bits_per_note, p.bits_per_token)
            for p in report.predictors
        ]
        lines += format_table(("predictor", "bits per note", "bits per token"), rows).splitlines()
    if report.gap is not None:
        lines.append(gap_line(report.gap))
    if report.copies is not None:
        lines.append(copy_line(report.copies))
    if report.listening is not None:
        lines.append(f"{report.listening.summary()}; {report.listening.seconds:.1f} s")
    lines += report.remarks
    lines += [f"warning: {warning}" for warning in report.warnings]
    lines.append(f"verdict: {report.verdict}")
    return lines


def gap_line(gap: LossGap) -> str:
    return (
        f"loss on training pieces {gap.train_nll:.3f}, on held-out pieces {gap.held_out_nll:.3f} "
        f"nats per token: gap {gap.gap:+.3f} ({gap.train_pieces:,} training "
        f"piece{'s' * (gap.train_pieces != 1)}, {gap.train_tokens:,} tokens)"
    )


def copy_line(copies: CopyCheck) -> str:
    flagged = "none flagged" if not copies.flagged else f"{copies.flagged} flagged as copies"
    return (
        f"copy check: {copies.pieces} sampled piece{'s' * (copies.pieces != 1)} of "
        f"{copies.tokens} tokens; longest run found in the train split {copies.longest_run} "
        f"note{'s' * (copies.longest_run != 1)}; {flagged} (at {copies.threshold:.0%} of "
        f"{copies.ngram}-note n-grams); {copies.seconds:.1f} s"
    )
